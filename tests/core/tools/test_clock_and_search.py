"""current_time and search_conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.tools.base import FoundMessage, ToolContext
from core.tools.clock import CurrentTime
from core.tools.search import SearchConversation
from tests.fakes.conversation import MemoryConversation

NOW = datetime(2026, 3, 1, 23, 30, 5, tzinfo=UTC)


async def test_current_time_in_utc():
    result = await CurrentTime(now=lambda: NOW).run({}, ToolContext(platform="test"))
    assert result.ok
    assert result.text.splitlines() == [
        "UTC: Sunday 2026-03-01 23:30:05 UTC (UTC+0000)",
        "ISO 8601: 2026-03-01T23:30:05+00:00",
    ]


async def test_current_time_in_a_time_zone_crosses_the_date_line():
    result = await CurrentTime(now=lambda: NOW).run({"timezone": "Asia/Tokyo"}, ToolContext(platform="t"))
    assert result.text.splitlines()[0] == "Asia/Tokyo: Monday 2026-03-02 08:30:05 JST (UTC+0900)"


async def test_current_time_real_clock_is_now():
    result = await CurrentTime().run({}, ToolContext(platform="t"))
    stamp = datetime.fromisoformat(result.text.splitlines()[1].removeprefix("ISO 8601: "))
    assert abs(datetime.now(UTC) - stamp) < timedelta(seconds=5)


async def test_an_unknown_time_zone_is_an_error_that_still_gives_utc():
    for zone in ("Mars/Olympus", "../etc/passwd", ""):
        result = await CurrentTime(now=lambda: NOW).run({"timezone": zone}, ToolContext(platform="t"))
        assert not result.ok and "IANA" in result.text and "2026-03-01 23:30:05" in result.text


def history() -> MemoryConversation:
    now = datetime.now(UTC)
    return MemoryConversation(
        [
            FoundMessage("alice", now - timedelta(days=3), "We deploy on Fridays", "https://chat/1"),
            FoundMessage("bob", now - timedelta(hours=2), "The deploy   failed\non step 3"),
            FoundMessage("carol", now - timedelta(minutes=5), "lunch?"),
        ]
    )


async def test_search_by_keyword_lists_matches_newest_first_compactly():
    conversation = history()
    ctx = ToolContext(platform="slack", conversation_search=conversation)
    result = await SearchConversation().run({"query": " deploy "}, ctx)
    lines = result.text.splitlines()
    assert lines[0] == "2 messages found for 'deploy':"
    assert lines[1].endswith("bob: The deploy failed on step 3")
    assert lines[2].endswith("alice: We deploy on Fridays <https://chat/1>")
    assert conversation.queries == [("deploy", None, 20)]


async def test_search_by_time_and_keyword():
    conversation = history()
    ctx = ToolContext(platform="slack", conversation_search=conversation)
    result = await SearchConversation().run({"query": "deploy", "since_hours": 24}, ctx)
    assert "1 message found for 'deploy' since" in result.text and "bob" in result.text
    assert "alice" not in result.text
    result = await SearchConversation().run({"since": "2000-01-01", "limit": 1}, ctx)
    assert "carol" in result.text and "bob" not in result.text
    assert conversation.queries[-1] == (None, datetime(2000, 1, 1, tzinfo=UTC), 1)


async def test_search_with_nothing_found_or_bad_filters():
    ctx = ToolContext(platform="slack", conversation_search=history())
    assert (await SearchConversation().run({"query": "kubernetes"}, ctx)).text == (
        "No messages found for 'kubernetes'."
    )
    assert not (await SearchConversation().run({"since": "last week"}, ctx)).ok
    assert not (await SearchConversation().run({"since_hours": -1}, ctx)).ok
    assert not (await SearchConversation().run({"limit": "ten"}, ctx)).ok


async def test_search_without_the_capability_says_so():
    result = await SearchConversation().run({"query": "x"}, ToolContext(platform="terminal"))
    assert not result.ok and result.text == "Searching the conversation is not available on terminal."


def test_search_status_line():
    assert SearchConversation().status_text({"query": "deploy"}) == "🔧 Searching this channel for 'deploy'…"
    assert SearchConversation().status_text({}) == "🔧 Searching this channel…"
