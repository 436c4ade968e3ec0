"""The tool loop through ChatService.answer: real fake model API, real local web site, real MCP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from core.commands import Caller, Cost, Dialect, Tools, parse_command, run_command
from core.models import ConversationKey, Turn
from core.reply.surface import PlatformLimits
from core.service import ChatService
from core.store.base import UsageFilter
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.mcp_server import mcp_config
from tests.fakes.memory_surface import MemorySurface, ToolSurface
from tests.fakes.model_server import Script, schema_problems, tool_call, tool_round

LIMITS = PlatformLimits(name="test", max_message_chars=2000, edits_per_window=50, window_s=1.0)
KEY = ConversationKey("test", "W1", "C1", "T1")
ADMIN = Caller("test", "W1", "C1", "U1", admin=True)
DIALECT = Dialect(syntax=lambda spec: f"/{spec.name}")
PAGE = (
    "<html><head><title>Release notes</title></head><body><main><article><h1>Release 4.2</h1>"
    + ("<p>Version 4.2 adds tool calls to the chat bot, with confirmations before side effects.</p>" * 5)
    + "</article></main></body></html>"
)


def turn(text: str = "q", *, user: str = "U1", message_id: str | None = None) -> Turn:
    return Turn(key=KEY, user_id=user, user_name=f"name-{user}", text=text, message_id=message_id)


def sent_messages(model_server, index: int) -> list[dict[str, Any]]:
    return model_server.requests[index].body["messages"]


def tool_messages(model_server, index: int) -> list[dict[str, Any]]:
    return [m for m in sent_messages(model_server, index) if m["role"] == "tool"]


@dataclass
class Site:
    """A local web site: an article, a slow page and pages that take a moment (counting overlap)."""

    url: str = ""
    in_flight: int = 0
    most_in_flight: int = 0
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_dropped: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site()

    async def article(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def moment(request: web.Request) -> web.Response:
        site.in_flight += 1
        site.most_in_flight = max(site.most_in_flight, site.in_flight)
        await asyncio.sleep(0.3)
        site.in_flight -= 1
        return web.Response(text=f"page {request.match_info['n']}", content_type="text/plain")

    async def slow(request: web.Request) -> web.Response:
        site.slow_started.set()
        for _ in range(300):
            if request.transport is None or request.transport.is_closing():
                site.slow_dropped.set()  # the client went away: the tool was cancelled
                break
            await asyncio.sleep(0.1)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/notes", article)
    app.router.add_get("/moment/{n}", moment)
    app.router.add_get("/slow", slow)
    runner, port = await serve_on_loopback(app)
    site.url = f"http://127.0.0.1:{port}"
    yield site
    await runner.cleanup()


@pytest.fixture
async def service(make_settings) -> AsyncIterator[ChatService]:
    service = await ChatService.open(make_settings(fetch_allow_hosts="127.0.0.1"))
    yield service
    await service.close()


@pytest.fixture
async def mcp_service(make_settings) -> AsyncIterator[ChatService]:
    """A service with the fake MCP server: `fake__lookup` (read-only), `fake__record_note` (side effect)."""
    service = await ChatService.open(make_settings(mcp_config=mcp_config(), tool_confirm_timeout_s=5))
    yield service
    await service.close()


async def test_one_tool_round_then_the_answer_in_one_reply(service, model_server):
    model_server.enqueue(
        tool_round(tool_call("current_time", {"timezone": "Europe/Paris"}), content="Let me check."),
        Script(content="It is noon in Paris."),
    )
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("What time is it in Paris?"), surface)

    assert outcome.status == "complete"
    assert outcome.text == "Let me check.\n\nIt is noon in Paris."
    first = model_server.requests[0].body
    assert {tool["function"]["name"] for tool in first["tools"]} == {
        "fetch_url",
        "current_time",
        "search_conversation",
    }
    assert (first["tool_choice"], first["parallel_tool_calls"]) == ("auto", True)
    assistant, tool = sent_messages(model_server, 1)[-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me check."
    assert assistant["tool_calls"][0]["function"]["name"] == "current_time"
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "Europe/Paris" in tool["content"]
    final = surface.texts[-1]
    assert final.startswith("Let me check.\n\nIt is noon in Paris.")
    assert "1 tool call" in final and "Checking the time" not in final
    stored = (await service.store.conversation(KEY))[-1]
    assert (stored.text, stored.status) == ("Let me check.\n\nIt is noon in Paris.", "complete")


@pytest.mark.parametrize("in_message", [True, False])
async def test_without_native_steps_the_reply_shows_them_itself(
    make_settings, model_server, site, in_message
):
    service = await ChatService.open(make_settings(fetch_allow_hosts="127.0.0.1"))
    model_server.enqueue(
        tool_round(tool_call("fetch_url", {"url": f"{site.url}/moment/1"}), content="Reading it."),
        Script(content="It says page 1.", first_byte_delay_s=0.3),
    )
    limits = PlatformLimits("test", 2000, 50, 1.0, thinking_in_message=in_message)
    surface = MemorySurface(limits)
    await service.answer(turn(), surface)
    await service.close()
    shown = [call.text or "" for call in surface.calls if call.kind == ("edit" if in_message else "status")]
    if in_message:
        assert "Reading it.\n\n_🔧 Fetching 127.0.0.1…_" in shown
        assert any(text.startswith("Reading it.\n\n_✅ Fetched 127.0.0.1 (") for text in shown)
    else:
        assert "🔧 Fetching 127.0.0.1…" in shown
        assert any(text.startswith("✅ Fetched 127.0.0.1 (") for text in shown)
    assert surface.texts[-1].startswith("Reading it.\n\nIt says page 1.\n\nSources: ")


async def test_each_round_is_reserved_and_recorded_and_the_footer_sums_them(service, model_server):
    model_server.enqueue(
        tool_round(tool_call("current_time"), usd=0.001),
        tool_round(
            tool_call("current_time", {"timezone": "Asia/Tokyo"}), tool_call("current_time"), usd=0.002
        ),
        Script(content="Done.", usd=0.0011),
    )
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn(), surface)

    assert outcome.usd == Decimal("0.0041")
    assert "3 tool calls · $0.0041" in surface.texts[-1]
    ids = {request.headers["X-Client-Request-Id"] for request in model_server.requests}
    assert len(ids) == 3  # a request id per model call...
    totals = await service.store.usage_totals(UsageFilter("test", "W1", user="U1"))
    assert (totals.requests, totals.usd) == (3, Decimal("0.0041"))  # ...and a ledger row for each
    report = await run_command(service, ADMIN, Cost(), DIALECT)
    assert "3 requests" in report and "$0.0041" in report


async def test_parallel_calls_run_at_once_and_answer_in_call_order(service, model_server, site):
    calls = [tool_call("fetch_url", {"url": f"{site.url}/moment/{n}"}) for n in (1, 2)]
    model_server.enqueue(tool_round(*calls), Script(content="Both read."))
    await service.answer(turn(), MemorySurface(LIMITS))

    assert site.most_in_flight == 2
    results = tool_messages(model_server, 1)
    assert [m["tool_call_id"] for m in results] == [call["id"] for call in calls]
    assert "page 1" in results[0]["content"] and "page 2" in results[1]["content"]


async def test_the_round_bound_stops_the_loop_and_says_so(make_settings, model_server):
    service = await ChatService.open(make_settings(tool_max_rounds=2))
    model_server.enqueue(
        tool_round(tool_call("current_time"), content="One."),
        tool_round(tool_call("current_time"), content="Two."),
        tool_round(tool_call("current_time"), content="Three."),
    )
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn(), surface)
    await service.close()

    assert len(model_server.requests) == 3
    assert outcome.status == "complete"
    final = surface.texts[-1]
    assert final.startswith("One.\n\nTwo.\n\nThree.")
    assert "⚠️ Stopped after 2 tool rounds (SEEDBOT_TOOL_MAX_ROUNDS)" in final
    assert "2 tool calls" in final  # the third round's call was not run


async def test_a_budget_spent_mid_loop_stops_before_the_next_round_and_keeps_the_text(
    make_settings, model_server
):
    # Round 1 fits ($0.0028 worst case); after it cost $0.003, round 2's worst case does not.
    service = await ChatService.open(make_settings(user_daily_budget_usd=Decimal("0.005")))
    model_server.enqueue(tool_round(tool_call("current_time"), content="Let me check.", usd=0.003))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn(), surface)
    totals = await service.store.usage_totals(UsageFilter("test", "W1", user="U1"))
    await service.close()

    assert len(model_server.requests) == 1
    final = surface.texts[-1]
    assert final.startswith("Let me check.")
    assert "⚠️ Stopped before the next step: daily budget of $0.005 reached" in final
    assert outcome.status == "complete" and totals.requests == 1


async def test_stop_while_a_slow_tool_runs_cancels_it(service, model_server, site):
    model_server.enqueue(tool_round(tool_call("fetch_url", {"url": f"{site.url}/slow"}), content="Reading."))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn(message_id="p1"), surface))
    await asyncio.wait_for(site.slow_started.wait(), 10)
    assert [answer.step for answer in service.live()] == ["running fetch_url"]
    assert service.stop("test", "p1")
    outcome = await asyncio.wait_for(task, 5)

    assert outcome.status == "stopped"
    assert "Stopped" in surface.texts[-1] and surface.texts[-1].startswith("Reading.")
    await asyncio.wait_for(site.slow_dropped.wait(), 5)
    assert len(model_server.requests) == 1
    assert (await service.store.conversation(KEY))[-1].status == "interrupted"


async def test_the_answer_time_limit_for_tools_stops_the_loop(make_settings, model_server, site):
    service = await ChatService.open(make_settings(fetch_allow_hosts="127.0.0.1", tool_answer_timeout_s=0.3))
    model_server.enqueue(tool_round(tool_call("fetch_url", {"url": f"{site.url}/slow"})))
    surface = MemorySurface(LIMITS)
    await asyncio.wait_for(service.answer(turn(), surface), 10)
    await service.close()
    assert "ran out of time (0.3 s, SEEDBOT_TOOL_ANSWER_TIMEOUT_S)" in surface.texts[-1]
    assert len(model_server.requests) == 1


async def test_fetch_url_through_the_loop_lists_its_source_under_the_answer(service, model_server, site):
    url = f"{site.url}/notes"
    model_server.enqueue(tool_round(tool_call("fetch_url", {"url": url})), Script(content="4.2 adds tools."))
    surface = ToolSurface(LIMITS)
    await service.answer(turn("what is new?"), surface)

    assert "Version 4.2 adds tool calls" in tool_messages(model_server, 1)[0]["content"]
    assert [(s.status, s.title) for s in surface.steps] == [
        ("running", "🔧 Fetching 127.0.0.1…"),
        ("done", "🔧 Fetching 127.0.0.1…"),
    ]
    assert surface.steps[1].detail.startswith("Fetched 127.0.0.1") and surface.steps[1].sources == (url,)
    body, sources = surface.texts[-1].split("\n\n")[:2]
    assert (body, sources) == ("4.2 adds tools.", f"Sources: {url}")


async def test_unknown_names_and_bad_arguments_become_errors_the_model_reads(service, model_server):
    model_server.enqueue(
        tool_round(tool_call("launch_rocket", {}), tool_call("current_time", '{"timezone": "Eur')),
        Script(content="Sorry, I could not."),
    )
    surface = ToolSurface(LIMITS)
    outcome = await service.answer(turn(), surface)

    unknown, bad = (m["content"] for m in tool_messages(model_server, 1))
    assert unknown.startswith("Error: There is no tool named 'launch_rocket'")
    assert bad.startswith("Error: The arguments are not valid JSON")
    assert [s.status for s in surface.steps if s.status != "running"] == ["failed", "failed"]
    assert outcome.status == "complete" and "2 tool calls" in surface.texts[-1]


async def test_a_tool_call_cut_by_the_token_limit_is_not_run(service, model_server):
    model_server.enqueue(
        tool_round(
            tool_call("current_time", '{"timezone": "Asia/To'), content="Checking.", finish_reason="length"
        )
    )
    surface = ToolSurface(LIMITS)
    await service.answer(turn(), surface)
    assert len(model_server.requests) == 1 and surface.steps == []
    final = surface.texts[-1]
    assert final.startswith("Checking.")
    assert "token limit (SEEDBOT_MAX_TOKENS) while writing a tool call; the call was not run" in final


async def test_the_assistant_turn_with_tool_calls_carries_string_content(service, model_server):
    model_server.enqueue(tool_round(tool_call("current_time")), Script(content="Noon."))
    await service.answer(turn(), MemorySurface(LIMITS))
    assistant = sent_messages(model_server, 1)[-2]
    assert assistant["content"] == "" and assistant["tool_calls"]
    # The schema the fake validates against refuses the null content an SDK might send.
    body = dict(model_server.requests[1].body)
    body["messages"] = [*body["messages"][:-2], {**assistant, "content": None}, body["messages"][-1]]
    assert schema_problems(body)


async def test_an_mcp_lookup_runs_through_the_loop_without_asking(mcp_service, model_server):
    model_server.enqueue(
        tool_round(tool_call("fake__lookup", {"country": "Kenya"})), Script(content="Nairobi.")
    )
    surface = ToolSurface(LIMITS)
    outcome = await mcp_service.answer(turn("capital of Kenya?"), surface)
    assert tool_messages(model_server, 1)[0]["content"] == "Nairobi"
    assert surface.asked == [] and outcome.text == "Nairobi."


async def test_a_side_effect_runs_once_the_asker_approves(mcp_service, model_server):
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "buy milk"})), Script(content="Noted.")
    )
    surface = ToolSurface(LIMITS, clicks=[(True, "U1")])
    await mcp_service.answer(turn("note: buy milk"), surface)

    [asked] = surface.asked
    assert (asked.tool_name, asked.arguments_preview, asked.user_id) == (
        "fake__record_note",
        '{"note": "buy milk"}',
        "U1",
    )
    assert asked.question == 'Run fake__record_note with {"note": "buy milk"}?'
    assert [(d.outcome, d.user_id) for d in surface.decisions] == [("approved", "U1")]
    assert tool_messages(model_server, 1)[0]["content"] == "recorded note 1"


async def test_a_declined_side_effect_is_not_run_and_the_model_is_told(mcp_service, model_server):
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "x"})), Script(content="OK, not noted.")
    )
    surface = ToolSurface(LIMITS, clicks=[(False, "U1")])
    await mcp_service.answer(turn(), surface)
    assert "The user declined" in tool_messages(model_server, 1)[0]["content"]
    assert surface.steps[-1].status == "failed" and surface.steps[-1].detail.startswith("Declined by U1 at ")
    # Nothing was recorded: the next approved note is the server's first.
    model_server.enqueue(tool_round(tool_call("fake__record_note", {"note": "y"})), Script(content="Noted."))
    await mcp_service.answer(turn(), ToolSurface(LIMITS, clicks=[(True, "U1")]))
    assert tool_messages(model_server, 3)[0]["content"] == "recorded note 1"


async def test_another_persons_click_does_not_count(mcp_service, model_server):
    model_server.enqueue(tool_round(tool_call("fake__record_note", {"note": "x"})), Script(content="Fine."))
    surface = ToolSurface(LIMITS, clicks=[(True, "U2"), (False, "U1")])
    await mcp_service.answer(turn(), surface)
    assert surface.counted == [False, True]
    assert [(d.outcome, d.user_id) for d in surface.decisions] == [("declined", "U1")]


async def test_no_answer_in_time_declines(make_settings, model_server):
    service = await ChatService.open(make_settings(mcp_config=mcp_config(), tool_confirm_timeout_s=0.2))
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "x"})), Script(content="Too late.")
    )
    surface = ToolSurface(LIMITS)
    outcome = await service.answer(turn(), surface)
    await service.close()
    assert [d.outcome for d in surface.decisions] == ["expired"]
    assert "did not confirm in time" in tool_messages(model_server, 1)[0]["content"]
    assert outcome.text == "Too late."


async def test_a_platform_that_cannot_ask_declines_side_effects(mcp_service, model_server):
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "x"})), Script(content="I can't.")
    )
    await mcp_service.answer(turn(), MemorySurface(LIMITS))
    assert "cannot ask for confirmation" in tool_messages(model_server, 1)[0]["content"]


async def test_shutdown_while_waiting_for_a_confirmation(mcp_service, model_server):
    model_server.enqueue(tool_round(tool_call("fake__record_note", {"note": "x"}), content="May I?"))
    surface = ToolSurface(LIMITS)
    task = asyncio.create_task(mcp_service.answer(turn(), surface))
    await asyncio.wait_for(surface.question_shown.wait(), 10)
    assert [answer.step for answer in mcp_service.live()] == ["waiting for confirmation"]
    # Another conversation is answered meanwhile: a pending question blocks only its own answer.
    other = Turn(key=ConversationKey("test", "W1", "C2"), user_id="U2", user_name="Bo", text="hi")
    assert (await asyncio.wait_for(mcp_service.answer(other, MemorySurface(LIMITS)), 10)).status == "complete"
    await mcp_service.drain(grace_s=0.1)
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.status == "interrupted"
    assert [d.outcome for d in surface.decisions] == ["cancelled"]
    assert surface.texts[-1].startswith("May I?") and "shutting down" in surface.texts[-1]


async def test_tools_are_listed_and_switched_per_channel_and_workspace(service, model_server):
    listed = await run_command(service, Caller("test", "W1", "C1", "U2"), Tools(), DIALECT)
    assert "• fetch_url: on" in listed and "• current_time: on" in listed
    refused = await run_command(
        service, Caller("test", "W1", "C1", "U2"), Tools("disable", "fetch_url"), DIALECT
    )
    assert refused.startswith("Only admins")

    said = await run_command(service, ADMIN, Tools("disable", "fetch_url", "workspace"), DIALECT)
    assert said.startswith("fetch_url is now **off** in this workspace.")
    assert "• fetch_url: off (switched off in this workspace)" in said
    await service.answer(turn(), MemorySurface(LIMITS))
    offered = {tool["function"]["name"] for tool in model_server.requests[-1].body["tools"]}
    assert offered == {"current_time", "search_conversation"}

    # The channel turns it back on for itself; another channel keeps the workspace's choice.
    said = await run_command(service, ADMIN, Tools("enable", "fetch_url", "channel"), DIALECT)
    assert "• fetch_url: on" in said
    elsewhere = await run_command(service, Caller("test", "W1", "C9", "U1"), Tools(), DIALECT)
    assert "• fetch_url: off (switched off in this workspace)" in elsewhere
    assert "no tool named `nope`" in await run_command(service, ADMIN, Tools("enable", "nope"), DIALECT)


def test_tools_commands_parse_from_typed_text():
    assert parse_command("tools") == Tools()
    assert parse_command("tools enable fetch_url") == Tools("enable", "fetch_url", "channel")
    assert parse_command("tools disable Files__Write server") == Tools("disable", "Files__Write", "workspace")
    for wrong in ("tools enable", "tools switch fetch_url", "tools enable a b"):
        with pytest.raises(ValueError):
            parse_command(wrong)


async def test_tools_switched_off_for_the_bot_offer_nothing(make_settings, model_server):
    service = await ChatService.open(make_settings(tools_enabled=False))
    await service.answer(turn(), MemorySurface(LIMITS))
    said = await run_command(service, ADMIN, Tools(), DIALECT)
    await service.close()
    assert "tools" not in model_server.requests[0].body
    assert "SEEDBOT_TOOLS_ENABLED" in said
