"""Files the bot uploads on Slack: `files_upload_v2` (files.getUploadURLExternal, the upload itself,
files.completeUploadExternal) into a conversation.

A report of `/seed` is ephemeral, and an ephemeral message cannot carry a file, so a picture for it
goes to the asker's DM (conversations.open) and the report says so.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.api import error_code

log = logging.getLogger(__name__)


async def upload_to_dm(client: AsyncWebClient, user: str, data: bytes, *, filename: str, title: str) -> bool:
    """Share `data` as `filename` in the DM with `user`; False (and logged) when Slack refuses, e.g.
    without the `files:write` or `im:write` scope."""
    try:
        opened = await client.conversations_open(users=user)
        await client.files_upload_v2(
            channel=str(opened["channel"]["id"]), file=data, filename=filename, title=title
        )
    except SlackApiError as error:
        log.warning("%s not uploaded to %s's DM (%s)", filename, user, error_code(error))
        return False
    except (SlackRequestError, aiohttp.ClientError, OSError, TimeoutError) as error:
        log.warning("%s not uploaded to %s's DM (%s: %s)", filename, user, type(error).__name__, error)
        return False
    return True
