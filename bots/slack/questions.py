"""Confirmation buttons on Slack: Block Kit Approve / Decline under a reply, clicks routed to the core.

Each button's value is the request id (`core.tools.confirm`), and the core accepts only the asker's
click before the request expires; anyone else who clicks is told so privately. Once decided, the
question is edited to say who approved or declined it, and when, and loses its buttons.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.api import error_code
from core.commands import user_mention
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation, ShownQuestions

log = logging.getLogger(__name__)

APPROVE, DECLINE = "seed_confirm_approve", "seed_confirm_decline"


def question_blocks(request: ConfirmationRequest) -> list[dict[str, Any]]:
    question = f"🔧 *{request.tool_name}* wants to run with:\n```{request.arguments_preview}```"
    buttons = [
        {"type": "button", "action_id": action, "text": {"type": "plain_text", "text": label}, "value": value}
        for action, label, value in (
            (APPROVE, "Approve", request.request_id),
            (DECLINE, "Decline", request.request_id),
        )
    ]
    buttons[0]["style"], buttons[1]["style"] = "primary", "danger"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": question}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": request.who_answers(user_mention)}],
        },
        {"type": "actions", "block_id": f"confirm-{request.request_id}", "elements": buttons},
    ]


class SlackQuestions:
    """The questions one Slack app has open, and how it shows and closes them."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self.shown: ShownQuestions[tuple[str, str]] = ShownQuestions()  # -> (channel, ts)

    async def ask(self, channel: str, thread_ts: str | None, pending: PendingConfirmation) -> bool:
        request = pending.request

        async def post() -> tuple[str, str] | None:
            try:
                response = await self._client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_ts,
                    text=request.question,
                    blocks=question_blocks(request),
                )
            except SlackApiError as error:
                log.warning("confirmation not shown in %s (%s)", channel, error_code(error))
                return None
            return channel, str(response["ts"])

        return await self.shown.ask(pending, post)

    async def decided(self, request: ConfirmationRequest, decision: Decision) -> None:
        where = self.shown.decided(request.request_id)
        if where is None:
            return
        channel, ts = where
        text = request.decided_text(decision, user_mention)
        try:
            await self._client.chat_update(
                channel=channel,
                ts=ts,
                text=text,
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            )
        except SlackApiError as error:
            log.warning("confirmation %s not updated (%s)", ts, error_code(error))
