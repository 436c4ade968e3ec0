"""Who may use the bot where (allowlists), and who may change shared settings (admins).

- `SLACK_ALLOWED_CHANNELS` names channels. A DM is nobody's channel: with a channel list set, DMs
  are open to the people `SLACK_ALLOWED_USERS` names and to admins (otherwise anyone in the
  workspace could spend the budget outside the allowed channels), unless the DM's id is listed.
- `SLACK_ALLOWED_USERS` names people, everywhere.
- Admins (`SEEDBOT_ADMINS`, Slack user ids) may use the bot anywhere and change channel settings.
"""

from __future__ import annotations

from core.config import Settings


def is_admin(settings: Settings, user: str) -> bool:
    return user in settings.admins


def allowed(settings: Settings, *, channel: str, user: str, is_dm: bool) -> bool:
    if is_admin(settings, user):
        return True
    users = settings.slack_allowed_users
    if users and user not in users:
        return False
    channels = settings.slack_allowed_channels
    if not channels or channel in channels:
        return True
    return is_dm and bool(users)
