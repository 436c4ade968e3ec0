"""The bot's global REST budget: Discord allows a bot DISCORD_GLOBAL_RATE_LIMIT requests a second,
whichever shard's process makes them (interaction webhooks are exempt).

Every REST call the bot makes once logged in draws from it, shared by every instance through Redis: a
reply's posts, edits, typing and buttons (through `ReplyCalls`, see surface.py), and the calls around
it (through core's `Pacer`, which `rate_limited_for` tells Discord's 429s): opening its thread,
reading the messages it needs, confirmation questions, telling the asker something, command sync,
crash recovery's edits.
"""

from __future__ import annotations

import discord

from core.coordination import Draw, Rate
from core.reply.surface import TRANSIENT_RETRY_S, SurfaceRateLimited

# Of the global limit, no second sends more than this share (the burst saved up and the refill), leaving
# room for the few calls made before any budget is known (logging in, command sync); of it, this share
# may be saved up (one call at least).
GLOBAL_SHARE, GLOBAL_BURST_SHARE = 0.96, 0.16
# A page of channel history (discord.py asks for at most 100 messages a call).
HISTORY_PAGE = 100
# What a `Pacer` call raises when its call did not happen: Discord refused it, or the budget had no room.
NOT_SENT = (discord.HTTPException, discord.RateLimited, SurfaceRateLimited)


def global_budget(application_id: int, limit_per_s: int) -> Draw:
    """The bot's global REST budget, keyed by the bot: two bots sharing one Redis each keep their own."""
    burst = max(1.0, GLOBAL_BURST_SHARE * limit_per_s)
    rate = Rate(per_s=GLOBAL_SHARE * limit_per_s - burst, burst=burst)
    return Draw(f"discord:{application_id}:global", rate, name="discord global")


def history_calls(messages: int) -> int:
    """How many REST calls reading `messages` messages of history takes."""
    return max(1, -(-messages // HISTORY_PAGE))


def refusal(error: BaseException) -> str | None:
    """The HTTP status Discord refused a `Pacer` call with; None when it was only busy (429s, no budget)."""
    if isinstance(error, discord.HTTPException) and error.status != 429:
        return str(error.status)
    return None


def retry_after(error: discord.HTTPException) -> float:
    """From the 429's headers: the precise X-RateLimit-Reset-After, else the whole-second Retry-After."""
    headers = error.response.headers if error.response is not None else {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return max(float(headers[name]), 0.0)
        except (KeyError, ValueError):
            continue
    return TRANSIENT_RETRY_S


def rate_limited_for(error: Exception) -> float | None:
    """Seconds to wait when `error` is Discord's 429 (past what discord.py waits out itself), else None."""
    if isinstance(error, discord.RateLimited):
        return error.retry_after
    if isinstance(error, discord.HTTPException) and error.status == 429:
        return retry_after(error)
    return None
