"""The bot scopes the Slack adapter uses; deploy/slack/manifest.yaml asks for exactly these."""

from __future__ import annotations

REQUIRED_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "chat:write",
        "files:read",
        "commands",
        "users:read",
    }
)
# Without these the bot still answers; they only light up extras.
OPTIONAL_SCOPES = {
    "assistant:write": "Slack's assistant view (thinking status, suggested prompts)",
    "files:write": "the spend chart /seed cost sends to your DM",
    "im:write": "opening the DM the spend chart of /seed cost goes to",
}
BOT_SCOPES = REQUIRED_SCOPES | OPTIONAL_SCOPES.keys()
