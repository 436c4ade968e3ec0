"""What the core adds to a request for particular kinds of question, and the few words of people's
that it understands as commands rather than as questions."""

SUMMARY_INSTRUCTION = (
    "You are summarizing a chat conversation from the earlier messages you were given. Cover the main "
    "topics, decisions, open questions and what any shared images, videos or files show; say who said "
    "what where it matters. Be concise and use short bullet points."
)

_STOP_WORDS = frozenset({"stop", "cancel", "stop it", "halt", "abort"})


def is_stop_request(text: str) -> bool:
    """`stop` (or cancel, abort...) said on its own: end the answer being written in this conversation."""
    return text.strip().rstrip(".!").strip().lower() in _STOP_WORDS
