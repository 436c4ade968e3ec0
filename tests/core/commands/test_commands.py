"""What each command means and says, on no platform at all: the specification adapters render."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.commands import (
    COMMANDS,
    BadArguments,
    Budget,
    Caller,
    Cost,
    Dialect,
    Effort,
    Forget,
    Help,
    Prompt,
    Summarize,
    Tools,
    admins_only,
    answer_command,
    help_text,
    html_safe_quote,
    parse_command,
    question_announcement,
    report_scope,
    run_command,
    setting_scope,
    usage_hint,
    usage_line,
)
from core.models import ConversationKey, Turn
from core.service import ChatService
from tests.core.service.test_answer import LIMITS
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script

PLAIN = Dialect(syntax=lambda spec: f"/{spec.name}")
SERVER = Dialect(syntax=lambda spec: f"/{spec.name}", workspace="server", admins="server managers")
ALICE = Caller("test", "W1", "C1", "alice")
BOSS = Caller("test", "W1", "C1", "boss", admin=True)


@pytest.fixture
async def service(make_settings):
    service = await ChatService.open(make_settings(user_daily_budget_usd=Decimal("5")))
    yield service
    await service.close()


async def say(service: ChatService, caller: Caller, command, dialect: Dialect = PLAIN) -> str:
    return await run_command(service, caller, command, dialect)


class TestEffort:
    async def test_shows_the_default_then_a_persons_own_setting(self, service):
        assert await say(service, ALICE, Effort()) == "Reasoning effort here: **medium** (from the default)."
        assert await say(service, ALICE, Effort("high")) == "Reasoning effort for you is now **high**."
        assert (
            await say(service, ALICE, Effort()) == "Reasoning effort here: **high** (from your own setting)."
        )
        assert await say(service, ALICE, Effort("default")) == (
            "Reasoning effort for you is now back to the default."
        )

    async def test_only_admins_set_it_for_a_channel_or_workspace_and_the_person_wins(self, service):
        assert await say(service, ALICE, Effort("low", "channel")) == admins_only(PLAIN)
        assert (
            await say(service, BOSS, Effort("low", "channel"))
            == "Reasoning effort for this channel is now **low**."
        )
        assert (
            await say(service, ALICE, Effort())
            == "Reasoning effort here: **low** (from this channel's setting)."
        )
        await say(service, BOSS, Effort("high", "workspace"), SERVER)
        bob = Caller("test", "W1", "C2", "bob")
        assert await say(service, bob, Effort(), SERVER) == (
            "Reasoning effort here: **high** (from this server's setting)."
        )

    async def test_a_place_without_a_workspace_has_no_workspace_setting(self, service):
        dm = Caller("test", "", "D1", "boss", admin=True, in_workspace=False)
        assert await say(service, dm, Effort("low", "workspace"), SERVER) == (
            "There is no server here; use scope `me`."
        )


class TestBudgetAndPrompt:
    async def test_budgets_are_shown_to_all_and_set_by_admins(self, service):
        shown = await say(service, ALICE, Budget())
        assert shown == (
            "Spending limits here: $5.00 per person per day (resets 00:00 UTC), unlimited for the "
            "workspace per month."
        )
        assert await say(service, ALICE, Budget("user_daily", "1")) == admins_only(PLAIN)
        assert (await say(service, BOSS, Budget("workspace_monthly", "$20"))).endswith(
            "$20.00 for the workspace per month."
        )
        assert "US dollars" in await say(service, BOSS, Budget("user_daily", "lots"))
        assert await say(service, BOSS, Budget("user_daily")) == "Give an amount, `unlimited` or `default`."
        assert (await service.budgets.limits("test", "W1")).workspace_monthly == Decimal("20")

    async def test_a_budget_outside_any_workspace_is_refused(self, service):
        dm = Caller("test", "", "D1", "boss", admin=True, in_workspace=False)
        assert (
            await say(service, dm, Budget(), SERVER) == "Budgets belong to a server; use this command in one."
        )

    async def test_a_channels_instructions_are_quoted_safely_and_reset(self, service):
        quoting = Dialect(syntax=PLAIN.syntax, quote=html_safe_quote)
        assert await say(service, BOSS, Prompt("Say <@everyone> hi"), quoting) == (
            "This channel's instructions:\n> Say &lt;@everyone&gt; hi"
        )
        assert (await say(service, ALICE, Prompt())).startswith("This channel's instructions:")
        assert await say(service, ALICE, Prompt("mine now")) == admins_only(PLAIN)
        assert (await say(service, BOSS, Prompt("default"))).startswith("Instructions here (the default):")


class TestCostAndForget:
    async def test_cost_counts_what_was_asked_and_forget_deletes_it(self, service, model_server):
        model_server.enqueue(Script(content="ok", usd=0.125))
        turn = Turn(ConversationKey("test", "W1", "C1", "T"), "alice", "Alice", "hi")
        await service.answer(turn, MemorySurface(LIMITS))
        report = await say(service, ALICE, Cost("me", "today"))
        assert "1 request" in report and "$0.125" in report and "Top spenders" not in report
        assert "Top spenders" in await say(service, BOSS, Cost("channel", "7d"))
        assert await say(service, ALICE, Forget()) == "Done: deleted 2 stored messages of yours."
        assert await say(service, ALICE, Forget()) == "Done: deleted 0 stored messages of yours."

    async def test_a_cost_report_comes_with_its_spend_chart_and_other_answers_with_none(self, service):
        report = await answer_command(service, ALICE, Cost("me", "7d"), PLAIN)
        assert report.text == await say(service, ALICE, Cost("me", "7d"))
        assert report.chart is not None and report.chart.startswith(b"\x89PNG")
        dm = Caller("test", "", "D1", "alice", in_workspace=False)
        refused = await answer_command(service, dm, Cost("workspace"), SERVER)
        assert (refused.text, refused.chart) == ("There is no server here; use scope `me`.", None)
        assert (await answer_command(service, ALICE, Help(), PLAIN)).chart is None


class TestTypedText:
    @pytest.mark.parametrize(
        ("text", "command"),
        [
            ("", Help()),
            ("help", Help()),
            ("effort", Effort()),
            ("effort high channel", Effort("high", "channel")),
            ("effort server low", Effort("low", "workspace")),
            ("cost 7d workspace", Cost("workspace", "7d")),
            ("budget daily 0.50", Budget("user_daily", "0.50")),
            ("budget monthly default", Budget("workspace_monthly", "default")),
            ("prompt  Be terse.  ", Prompt("Be terse.")),
            ("summarize", Summarize()),
            ("summarize 20", Summarize(messages=20)),
            ("summarise 2d", Summarize(messages=None, hours=48)),
            ("forget", Forget()),
            ("what is 2 + 2?", None),
        ],
    )
    def test_commands_and_questions_are_told_apart(self, text, command):
        assert parse_command(text) == command

    @pytest.mark.parametrize(
        "text",
        [
            "effort extreme",
            "effort low channel workspace",
            "cost lots",
            "budget daily",
            "forget me",
            "summarize 0",
            "summarize 30d",
            "summarize lots",
        ],
    )
    def test_a_known_command_typed_wrongly_says_what_is_wrong(self, text):
        with pytest.raises(BadArguments):
            parse_command(text)

    def test_a_summary_asks_for_the_range_it_found(self):
        assert (
            Summarize(hours=1, messages=None).request(1)
            == "Summarize the last hour of this channel (1 message)."
        )
        assert Summarize(messages=3).what == "the last 3 messages"

    def test_the_words_for_a_scope_mean_the_same_typed_or_picked_and_server_is_the_workspace(self):
        words = ("me", "channel", "server")
        assert [setting_scope(word) for word in words] == ["user", "channel", "workspace"]
        assert [report_scope(word) for word in words] == ["me", "channel", "workspace"]
        assert parse_command("effort low server") == Effort("low", setting_scope("server"))
        assert parse_command("tools disable fetch_url server") == Tools("disable", "fetch_url", "workspace")

    def test_a_summary_is_announced_with_its_range_and_who_asked(self):
        assert Summarize(messages=20).announcement("<@U1>") == (
            "<@U1> asked me to summarize the last 20 messages here."
        )
        assert Summarize(hours=24, messages=None, kind="media").announcement("Ann") == (
            "Ann asked me to summarize what was shared in the last 24 hours here."
        )

    def test_a_question_asked_through_a_command_is_announced_quoted_in_the_platforms_markup(self):
        quoting = Dialect(syntax=PLAIN.syntax, quote=html_safe_quote)
        assert question_announcement("<@U1>", "is <!channel> 2+2?\nor 5?", quoting) == (
            "<@U1> asked:\n> is &lt;!channel&gt; 2+2?\n> or 5?"
        )


class TestHelp:
    def test_help_lists_every_offered_command_from_the_one_table(self):
        offered = Dialect(syntax=lambda spec: f"/{spec.name}" if spec.name != "budget" else None)
        text = help_text(offered)
        for spec in COMMANDS:
            assert (f"/{spec.name}:" in text) == (spec.name != "budget")
        assert "/budget" not in usage_line(offered)
        assert text.splitlines()[0].startswith("**Seed** answers")

    def test_the_usage_hint_points_at_ask_and_help(self):
        assert usage_hint(PLAIN).endswith("or use /ask. /help lists everything I can do.")
        assert usage_hint(Dialect(syntax=lambda spec: None)).endswith(
            "(attach images or videos if you like)."
        )
