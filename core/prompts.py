"""What the core adds to a request for particular kinds of question, and the few words of people's
that it understands as commands rather than as questions."""

SUMMARY_INSTRUCTION = (
    "You are summarizing a chat conversation from the earlier messages you were given. Cover the main "
    "topics, decisions, open questions and what any shared images, videos or files show; say who said "
    "what where it matters. Be concise and use short bullet points."
)

MEDIA_SUMMARY_INSTRUCTION = (
    "You are summarizing the files, images and videos shared in a chat conversation, given as the earlier "
    "messages. Go through what was shared, newest last: for each, name who shared it and when it matters, "
    "and say briefly what it shows or contains. Ignore messages without files. Be concise."
)


def summary_instruction(kind: str) -> str:
    """What the model is told for a summary of a range's messages, or of only the media shared in it."""
    return MEDIA_SUMMARY_INSTRUCTION if kind == "media" else SUMMARY_INSTRUCTION


_STOP_WORDS = frozenset({"stop", "cancel", "stop it", "halt", "abort"})


def is_stop_request(text: str) -> bool:
    """`stop` (or cancel, abort...) said on its own: end the answer being written in this conversation."""
    return text.strip().rstrip(".!").strip().lower() in _STOP_WORDS
