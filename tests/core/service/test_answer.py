"""ChatService.answer: one prompt through store, media, context, budget, model and reply surface."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest

from core.access import Allowlist
from core.admission import Admission
from core.commands import Budget, Caller, Dialect, Effort, Prompt, run_command
from core.feedback import FeedbackSubject
from core.models import AttachmentError, ConversationKey, HistoryMessage, Turn
from core.preferences import effort_for, system_prompt_for
from core.reply.surface import PlatformLimits
from core.service import ChatService
from core.store.base import UsageFilter
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script

LIMITS = PlatformLimits(name="test", max_message_chars=2000, edits_per_window=50, window_s=1.0)
KEY = ConversationKey("test", "W1", "C1", "T1")
ADMIN = Caller("test", "W1", "C1", "U1", admin=True)
TEST_DIALECT = Dialect(syntax=lambda spec: f"/{spec.name}")


@dataclass
class BytesFile:
    name: str
    data: bytes
    declared_mime: str | None = None
    source: str = "memory"

    @property
    def declared_size(self) -> int:
        return len(self.data)

    async def read(self, max_bytes: int) -> bytes:
        if len(self.data) > max_bytes:
            raise AttachmentError("too large")
        return self.data


def turn(text: str, *, user: str = "U1", message_id: str | None = None, **fields) -> Turn:
    return Turn(key=KEY, user_id=user, user_name=f"name-{user}", text=text, message_id=message_id, **fields)


async def shown(surface: MemorySurface, words: str) -> None:
    """Until the reply visibly contains `words` (bounded)."""
    for _ in range(100):
        if any(words in text for text in surface.texts):
            return
        surface.changed.clear()
        await asyncio.wait_for(surface.changed.wait(), 5)
    raise AssertionError(f"{words!r} never shown")


@pytest.fixture
async def service(make_settings):
    service = await ChatService.open(make_settings())
    yield service
    await service.close()


async def test_answer_streams_into_the_surface_with_footer_and_is_remembered(service, model_server):
    model_server.enqueue(Script(reasoning="hmm", content="Paris is the capital.", usd=0.0042))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("Capital of France?", message_id="m1"), surface)

    assert outcome.status == "complete"
    assert outcome.text == "Paris is the capital."
    final = surface.texts[-1]
    assert final.startswith("Paris is the capital.")
    assert "medium effort" in final and "$0.0042" in final
    stored = await service.store.conversation(KEY)
    assert [(m.role, m.text, m.status) for m in stored] == [
        ("user", "Capital of France?", "complete"),
        ("assistant", "Paris is the capital.", "complete"),
    ]
    assert stored[0].platform_message_id == "m1"
    assert stored[1].platform_message_id == outcome.refs[-1].id


async def test_second_turn_sends_the_first_as_context_without_reasoning(service, model_server):
    model_server.enqueue(
        Script(reasoning="secret thoughts", content="First answer."), Script(content="Second.")
    )
    await service.answer(turn("one"), MemorySurface(LIMITS))
    await service.answer(turn("two"), MemorySurface(LIMITS))
    messages = model_server.requests[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "First answer."
    assert "secret thoughts" not in str(messages)


async def test_effort_resolves_user_over_channel_over_default_and_request_over_all(service, model_server):
    await run_command(service, ADMIN, Effort("low", "channel"), TEST_DIALECT)
    await service.answer(turn("a"), MemorySurface(LIMITS))
    await run_command(service, ADMIN, Effort("high"), TEST_DIALECT)
    await service.answer(turn("b"), MemorySurface(LIMITS))
    await service.answer(turn("c", effort="medium"), MemorySurface(LIMITS))
    assert [r.body["reasoning_effort"] for r in model_server.requests] == ["low", "high", "medium"]
    assert await effort_for(
        service.store, service.settings, platform="test", workspace="W1", channel="C1", user="U1"
    ) == ("high", "user")


async def test_ledger_records_the_reported_cost_and_tokens(service, model_server):
    model_server.enqueue(Script(reasoning="r" * 40, content="ok", usd=0.25))
    outcome = await service.answer(turn("q"), MemorySurface(LIMITS))
    totals = await service.store.usage_totals(UsageFilter("test", "W1", user="U1"))
    assert totals.requests == 1
    assert totals.usd == Decimal("0.25")
    assert totals.reasoning_tokens == 10
    assert outcome.usd == Decimal("0.25")


async def test_budget_refusal_is_shown_and_nothing_is_sent(make_settings, model_server):
    service = await ChatService.open(make_settings(user_daily_budget_usd=Decimal("0.0001")))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("q"), surface)
    await service.close()
    assert outcome.status == "refused"
    assert "daily budget of $0.0001 reached" in surface.texts[-1]
    assert "resets at 00:00 UTC" in surface.texts[-1]
    assert model_server.requests == []


async def test_error_before_any_text_shows_a_human_explanation(service, model_server):
    model_server.enqueue(Script(status=403, error_message="insufficient balance"))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("q"), surface)
    assert outcome.status == "error"
    assert "out of credits" in surface.texts[-1]
    assert (await service.store.conversation(KEY))[-1].status == "error"


async def test_cut_stream_keeps_the_partial_answer_marked_interrupted(service, model_server):
    model_server.enqueue(Script(content="The beginning of a long answer", chunk_chars=5, cut_after=3))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("q"), surface)
    assert outcome.status == "interrupted"
    assert surface.texts[-1].startswith("The beginning o")
    assert "⚠️" in surface.texts[-1]
    stored = (await service.store.conversation(KEY))[-1]
    assert (stored.status, stored.text) == ("interrupted", "The beginning o")


async def test_stop_cancels_upstream_and_finalises_as_stopped(service, model_server):
    model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn("q", message_id="p1"), surface))
    await shown(surface, "word")
    assert service.stop("test", "p1") is True
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status == "stopped"
    assert "Stopped" in surface.texts[-1]
    await asyncio.wait_for(model_server.requests[0].disconnected.wait(), 5)


async def test_messages_in_one_thread_are_answered_in_order_never_interleaved(service, model_server):
    model_server.enqueue(Script(content="first " * 20, delay_s=0.01), Script(content="second"))
    first = asyncio.create_task(service.answer(turn("1"), MemorySurface(LIMITS)))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.answer(turn("2"), MemorySurface(LIMITS)))
    await asyncio.gather(first, second)
    # The second request was sent only after the first answer was complete, and saw it as context.
    second_messages = model_server.requests[1].body["messages"]
    assert second_messages[-2]["content"].startswith("first first")


async def test_files_are_read_and_bad_ones_get_a_note_while_the_rest_is_answered(service, model_server):
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(png, format="PNG")
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(
        turn(
            "what is this?",
            attachments=[BytesFile("pic.png", png.getvalue()), BytesFile("junk.bin", b"\x00" * 9)],
        ),
        surface,
    )
    assert outcome.status == "complete"
    parts = model_server.requests[0].body["messages"][-1]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png") for p in parts)
    assert "junk.bin" in surface.texts[-1]
    stored_user = (await service.store.conversation(KEY))[0]
    assert [(a.kind, a.name) for a in stored_user.attachments] == [("image", "pic.png")]


async def test_platform_history_becomes_context_before_the_prompt(service, model_server):
    history = [
        HistoryMessage(role="user", author="Ana", text="The deploy failed at step 3", message_id="h1"),
        HistoryMessage(role="user", author="Bo", text="Logs say disk full", message_id="h2"),
    ]
    await service.answer(turn("@seedbot what happened?", history=history), MemorySurface(LIMITS))
    texts = str(model_server.requests[0].body["messages"])
    assert texts.index("step 3") < texts.index("disk full") < texts.index("what happened?")


async def test_drain_lets_answers_finish_then_refuses_new_work(service, model_server):
    model_server.enqueue(Script(content="finishing " * 10, delay_s=0.01))
    task = asyncio.create_task(service.answer(turn("q"), MemorySurface(LIMITS)))
    await asyncio.sleep(0.05)
    await service.drain(grace_s=10)
    assert (await task).status == "complete"
    late = MemorySurface(LIMITS)
    assert (await service.answer(turn("late"), late)).status == "refused"
    assert "restarting" in late.texts[-1]


class WithFeedback(MemorySurface):
    """A surface that can put 👍 / 👎 under a finished answer, and notes each time it is asked to."""

    def __init__(self) -> None:
        super().__init__(LIMITS)
        self.offered: list[FeedbackSubject] = []

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        self.offered.append(subject)


async def test_a_finished_answer_is_offered_feedback_buttons_except_while_shutting_down(
    service, model_server
):
    before = WithFeedback()
    assert (await service.answer(turn("q"), before)).status == "complete"
    assert len(before.offered) == 1
    model_server.enqueue(Script(content="finishing " * 10, delay_s=0.01))
    during = WithFeedback()
    task = asyncio.create_task(service.answer(turn("q"), during))
    await shown(during, "finishing")
    await service.drain(grace_s=10)
    assert (await task).status == "complete"
    assert during.offered == []  # its platform budget is for other answers' final texts


class SlowFeedback(WithFeedback):
    """A surface whose feedback buttons wait for a platform budget that has no room for a long while."""

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        self.offered.append(subject)
        await asyncio.sleep(60)


async def test_a_shutdown_ends_the_wait_of_feedback_buttons_behind_other_answers(service, model_server):
    waiting = SlowFeedback()
    task = asyncio.create_task(service.answer(turn("q"), waiting))
    for _ in range(200):  # bounded: until the answer is whole and its buttons wait for their turn
        if waiting.offered:
            break
        await asyncio.sleep(0.01)
    assert waiting.offered
    started = time.monotonic()
    await service.drain(grace_s=0.2)
    assert time.monotonic() - started < 5  # not the minute the buttons would have waited
    assert (await asyncio.wait_for(task, 5)).status == "complete"


async def test_drain_past_grace_finalises_answers_as_interrupted(service, model_server):
    model_server.enqueue(Script(content="slow " * 200, chunk_chars=5, delay_s=0.05))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn("q"), surface))
    await asyncio.sleep(0.3)
    await service.drain(grace_s=0.2)
    outcome = await task
    assert outcome.status == "interrupted"
    assert "shutting down" in surface.texts[-1]
    assert (await service.store.conversation(KEY))[-1].status == "interrupted"


async def restart_after_crash(settings, partial_text: str, message_id: str) -> ChatService:
    """A process that died while streaming `partial_text` into message `message_id`, started again."""
    crashed = await ChatService.open(settings)
    reply = await crashed.store.add_message(
        KEY, "assistant", "seedbot", "seedbot", partial_text, status="streaming"
    )
    await crashed.store.update_message(reply, platform_message_id=message_id)
    await crashed.close()
    return await ChatService.open(settings)


async def test_crashed_reply_is_recovered_with_its_partial_text(make_settings):
    service = await restart_after_crash(make_settings(), "half an ans", "msg-9")
    recovered = service.interrupted_replies("test", LIMITS)
    assert len(recovered) == 1
    assert recovered[0].platform_message_id == "msg-9"
    assert recovered[0].text.startswith("half an ans") and "restarted" in recovered[0].text
    assert service.interrupted_replies("test", LIMITS) == []
    await service.close()


async def test_metrics_count_answers_tokens_cost_edits_and_retries(service, model_server):
    model_server.enqueue(Script(status=503), Script(reasoning="rrrr" * 5, content="fine", usd=0.5))
    await service.answer(turn("q"), MemorySurface(LIMITS))
    page = service.metrics.render().decode()
    assert 'seedbot_requests_total{outcome="complete",platform="test"} 1.0' in page
    assert 'seedbot_tokens_total{kind="reasoning"} 5.0' in page
    assert "seedbot_cost_usd_total 0.5" in page
    assert "seedbot_model_retries_total 1.0" in page
    assert 'seedbot_edits_total{platform="test"}' in page
    assert "seedbot_active_streams 0.0" in page


async def test_retention_runs_periodically_while_the_bot_runs(make_settings):
    from datetime import timedelta

    from core.store.base import utc_now

    service = await ChatService.open(make_settings(retention_days=1))
    await service.store.add_message(KEY, "user", "U1", "Ann", "old news", at=utc_now() - timedelta(days=3))
    tidy = asyncio.create_task(service.keep_tidy(every_s=0.05))
    for _ in range(100):
        if not await service.store.conversation(KEY):
            break
        await asyncio.sleep(0.05)
    tidy.cancel()
    assert await service.store.conversation(KEY) == []
    await service.close()


async def test_a_streaming_reply_is_stored_with_its_message_id_before_it_finishes(service, model_server):
    # What crash recovery needs: the message to mark as interrupted is known while the answer streams.
    model_server.enqueue(Script(content="slow " * 100, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn("q"), surface))
    for _ in range(200):
        stored = await service.store.conversation(KEY)
        if len(stored) == 2 and stored[1].platform_message_id:
            break
        await asyncio.sleep(0.01)
    assert stored[1].status == "streaming"
    assert stored[1].platform_message_id == next(iter(surface.messages))
    await task


async def test_a_surface_that_keeps_failing_is_logged_and_the_answer_is_still_kept(
    service, model_server, caplog
):
    class BrokenSurface(MemorySurface):
        async def post(self, text: str):
            raise RuntimeError("adapter bug")

    model_server.enqueue(Script(content="kept anyway"))
    outcome = await service.answer(turn("q"), BrokenSurface(LIMITS))
    assert outcome.text == "kept anyway"
    assert "not delivered" in caplog.text
    kept = (await service.store.conversation(KEY))[-1]
    # The store keeps the whole answer, and says the chat shows it incomplete.
    assert (kept.text, kept.status) == ("kept anyway", "interrupted")
    # The service keeps working for everyone else.
    assert (await service.answer(turn("again"), MemorySurface(LIMITS))).status == "complete"


async def test_recovered_reply_cut_inside_a_code_block_closes_it_before_the_warning(make_settings):
    service = await restart_after_crash(make_settings(), "Here:\n```python\nprint(1)\n", "msg-7")
    [recovered] = service.interrupted_replies("test", LIMITS)
    await service.close()
    body, _, warning = recovered.text.rpartition("\n\n")
    assert body.rstrip().endswith("```") and body.count("```") == 2
    assert "restarted" in warning


async def test_slow_video_work_shows_its_progress_as_the_reply_status(make_settings, model_server, tmp_path):
    from tests.core.media.samples import write_video

    clip = write_video(tmp_path / "long.mp4", seconds=3, width=160, height=120).read_bytes()
    service = await ChatService.open(make_settings(video_max_seconds=2))
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(turn("what happens?", attachments=[BytesFile("long.mp4", clip)]), surface)
    await service.close()
    assert outcome.status == "complete"
    assert any(status and status.startswith("Preparing long.mp4… ") for status in surface.statuses)
    assert "only the first" in surface.texts[-1]  # the trimming note


async def test_asking_to_stop_ends_the_answer_being_written_in_that_conversation(service, model_server):
    model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn("q"), surface))
    await shown(surface, "word")
    assert service.stop_conversation(ConversationKey("test", "W1", "C1", "other thread")) is False
    assert service.stop_conversation(KEY) is True
    assert (await asyncio.wait_for(task, 10)).status == "stopped"
    assert "Stopped" in surface.texts[-1]
    assert service.stop_conversation(KEY) is False


async def test_a_prompt_too_long_for_the_model_is_refused_and_later_turns_keep_their_history(
    make_settings, model_server
):
    service = await ChatService.open(make_settings(context_tokens=1024 + 600, max_tokens=1024))
    await service.answer(turn("short question"), MemorySurface(LIMITS))
    surface = MemorySurface(LIMITS)
    refused = await service.answer(turn("x" * 5000), surface)
    assert refused.status == "error" and "too long" in surface.texts[-1]
    await service.answer(turn("follow-up"), MemorySurface(LIMITS))
    await service.close()
    roles = [m["role"] for m in model_server.requests[-1].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the refused prompt is not in the way


async def test_stop_reaches_a_call_still_waiting_to_retry(make_settings, model_server):
    service = await ChatService.open(make_settings(max_retries=3, retry_max_wait_s=30))
    model_server.enqueue(Script(status=429, retry_after="20"), Script(content="too late"))
    task = asyncio.create_task(service.answer(turn("q", message_id="p9"), MemorySurface(LIMITS)))
    for _ in range(200):
        if model_server.requests:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert service.stop("test", "p9")
    outcome = await asyncio.wait_for(task, 5)  # not after the 20 s Retry-After
    await service.close()
    assert outcome.status == "stopped"
    assert len(model_server.requests) == 1


async def test_a_recovered_reply_too_full_for_the_warning_gets_it_as_a_follow_up(make_settings):
    full = "word " * (LIMITS.max_message_chars // 5)
    service = await restart_after_crash(make_settings(), full, "msg-5")
    [recovered] = service.interrupted_replies("test", LIMITS)
    await service.close()
    assert len(recovered.text) <= LIMITS.max_message_chars
    assert recovered.text.startswith("word word")
    assert recovered.follow_up is not None and "restarted" in recovered.follow_up


async def test_a_channel_system_prompt_is_used_there_and_can_be_cleared(service, model_server):
    await run_command(service, ADMIN, Prompt("Answer like a pirate."), TEST_DIALECT)
    assert await system_prompt_for(service.store, service.settings, platform="test", channel="C1") == (
        "Answer like a pirate.",
        True,
    )
    await service.answer(turn("hello"), MemorySurface(LIMITS))
    assert model_server.requests[-1].body["messages"][0]["content"] == "Answer like a pirate."
    await run_command(service, ADMIN, Prompt("default"), TEST_DIALECT)
    assert await system_prompt_for(service.store, service.settings, platform="test", channel="C1") == (
        service.settings.system_prompt,
        False,
    )


async def test_an_admin_sets_workspace_budgets_at_run_time(make_settings, model_server):
    service = await ChatService.open(make_settings(user_daily_budget_usd=Decimal("5")))
    await run_command(service, ADMIN, Budget("user_daily", "$0.0001"), TEST_DIALECT)
    assert (await service.budgets.limits("test", "W1")).user_daily == Decimal("0.0001")
    surface = MemorySurface(LIMITS)
    assert (await service.answer(turn("q"), surface)).status == "refused"
    await run_command(service, ADMIN, Budget("user_daily", "unlimited"), TEST_DIALECT)
    assert (await service.budgets.limits("test", "W1")).user_daily is None
    assert (await service.answer(turn("q"), MemorySurface(LIMITS))).status == "complete"
    await run_command(service, ADMIN, Budget("user_daily", "default"), TEST_DIALECT)
    assert (await service.budgets.limits("test", "W1")).user_daily == Decimal("5")
    refused = await run_command(service, ADMIN, Budget("workspace_monthly", "lots"), TEST_DIALECT)
    assert "US dollars" in refused
    await service.close()


async def test_the_footer_can_be_switched_off(make_settings, model_server):
    service = await ChatService.open(make_settings(footer=False))
    model_server.enqueue(Script(content="Just the answer.", usd=0.01))
    surface = MemorySurface(LIMITS)
    await service.answer(turn("q"), surface)
    await service.close()
    assert surface.texts[-1] == "Just the answer."


async def test_a_reply_in_several_messages_is_found_by_any_of_them_and_not_repeated_as_history(
    service, model_server
):
    small = PlatformLimits(name="test", max_message_chars=200, edits_per_window=50, window_s=1.0)
    long_answer = "\n\n".join(f"Paragraph {i} " + "x" * 120 for i in range(4))
    model_server.enqueue(Script(content=long_answer, chunk_chars=50))
    surface = MemorySurface(small)
    outcome = await service.answer(turn("long please"), surface)
    first_part = outcome.refs[0].id
    assert len(outcome.refs) >= 3
    assert await Admission(service, "", Allowlist()).conversation_of("test", first_part) == KEY

    # A platform hands the first part back as history (a reply chain): it is not sent twice.
    history = [
        HistoryMessage(role="assistant", author="seedbot", text="Paragraph 0 ...", message_id=first_part)
    ]
    await service.answer(turn("and then?", history=history), MemorySurface(small))
    sent = str(model_server.requests[-1].body["messages"])
    assert sent.count("Paragraph 0") == 1


@pytest.mark.parametrize("ending", ["complete", "refused", "stopped", "error"])
async def test_the_reply_is_closed_exactly_once_however_the_answer_ends(make_settings, model_server, ending):
    budget = Decimal("0.0000001") if ending == "refused" else None
    service = await ChatService.open(make_settings(user_daily_budget_usd=budget))
    if ending == "error":
        model_server.enqueue(Script(status=403, error_message="no credits"))
    if ending == "stopped":
        model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    answering = asyncio.create_task(service.answer(turn("q", message_id="p1"), surface))
    if ending == "stopped":
        await shown(surface, "word")
        service.stop("test", "p1")
    outcome = await asyncio.wait_for(answering, 10)
    await service.close()
    assert outcome.status == ending
    assert surface.closed == 1


async def test_live_lists_the_answer_being_written_and_stop_answer_ends_it(service, model_server):
    model_server.enqueue(Script(reasoning="hmm " * 5, content="word " * 400, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(turn("q", effort="high"), surface))
    await shown(surface, "word")
    [answer] = service.live()
    assert (answer.platform, answer.workspace, answer.channel, answer.user) == ("test", "W1", "C1", "U1")
    assert answer.effort == "high" and answer.step == "answering"
    assert answer.tokens >= 5  # the four reasoning chunks and at least one answer chunk
    assert [again.id for again in service.live()] == [answer.id]  # stable while it runs
    assert service.stop_answer("not-an-answer") is False
    assert service.stop_answer(answer.id) is True
    assert (await asyncio.wait_for(task, 10)).status == "stopped"
    assert "Stopped" in surface.texts[-1]
    assert service.live() == [] and service.stop_answer(answer.id) is False
