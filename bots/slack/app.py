"""The slack-bolt `AsyncApp` for seedbot: which Slack requests go to which handler.

`process_before_response=True`: Bolt answers Slack only after a listener returns, and every
listener here returns at once (it acknowledges and spawns the work), so the acknowledgement always
leaves within Slack's 3 seconds, and any work it started is already tracked when Slack sees it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped

from bots.slack import commands, events, feedback, questions
from bots.slack.bot import SlackBot
from core.config import Settings

if TYPE_CHECKING:
    from core.service import ChatService

Ack = Any  # slack_bolt.context.ack.async_ack.AsyncAck; Bolt injects listener arguments by name


class SeedSlackApp(AsyncApp):
    """An AsyncApp that carries the state its handlers share."""

    seed: SlackBot


class _OneTokenNotTwo(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself, then warns at every start that the
    client's token and `authorize` (the very same token) win over it: noise no argument avoids."""

    NOISE = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOISE


def build_slack_app(settings: Settings, service: ChatService) -> SeedSlackApp:
    bot = SlackBot(settings, service)
    secret = settings.slack_signing_secret
    bolt_log = logging.getLogger("seedbot.slack.bolt")
    if not any(isinstance(known, _OneTokenNotTwo) for known in bolt_log.filters):
        bolt_log.addFilter(_OneTokenNotTwo())

    async def authorize() -> AuthorizeResult:
        # Who the app is, from the one auth.test at start-up. Bolt's own would call auth.test again
        # for every event until the first call returns: a burst of events after a restart could be
        # rate limited there, and an event whose authorization fails is dropped.
        return bot.identity.authorization

    app = SeedSlackApp(
        name="seedbot",
        logger=bolt_log,
        client=bot.reads,
        authorize=authorize,
        signing_secret=secret.get_secret_value() if secret is not None else "",
        process_before_response=True,
    )
    app.seed = bot

    @app.event("message")
    @app.event("app_mention")
    async def message(ack: Ack, event: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        events.route_message(bot, event, body)

    @app.event("assistant_thread_started")
    async def assistant_thread_started(ack: Ack, event: dict[str, Any]) -> None:
        await ack()
        bot.work.spawn(events.on_assistant_thread_started(bot, event), "assistant thread")

    @app.event("assistant_thread_context_changed")
    async def assistant_thread_context_changed(ack: Ack) -> None:
        await ack()  # the channel someone is looking at does not change the answers

    @app.command("/seed")
    async def seed(ack: Ack, command: dict[str, Any], respond: Any) -> None:
        await commands.on_command(bot, ack, command, respond)

    @app.action(re.compile(f"^({questions.APPROVE}|{questions.DECLINE})$"))
    async def confirm(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user, channel = str(body["user"]["id"]), str((body.get("channel") or {}).get("id") or "")
        refusal = bot.questions.shown.click(
            str(action.get("value")), action["action_id"] == questions.APPROVE, user
        )
        if refusal is not None and channel:
            bot.work.spawn(bot.tell(channel, user, refusal), "confirmation refusal")

    @app.action(feedback.FEEDBACK)
    async def rate(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.work.spawn(feedback.on_press(bot.service.store, bot.tell, body, action), "feedback")

    @app.shortcut(commands.SHORTCUT_ID)
    async def summarize(ack: Ack, shortcut: dict[str, Any], respond: Any) -> None:
        await ack()
        bot.work.spawn(commands.on_summarize_shortcut(bot, shortcut, respond), "shortcut")

    return app
