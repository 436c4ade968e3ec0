"""Instructions the core adds to the system prompt for particular kinds of request."""

SUMMARY_INSTRUCTION = (
    "You are summarizing a chat conversation from the earlier messages you were given. Cover the main "
    "topics, decisions, open questions and what any shared images, videos or files show; say who said "
    "what where it matters. Be concise and use short bullet points."
)
