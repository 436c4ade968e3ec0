"""The per-channel edit pacer, driven in virtual time with the platforms' published limits."""

from __future__ import annotations

import random

import pytest

from core.reply.pacing import EditPacer, PacerRegistry
from core.reply.surface import PlatformLimits

DISCORD = PlatformLimits("discord", 2000, edits_per_window=5, window_s=5.0)
SLACK = PlatformLimits("slack", 12000, edits_per_window=50, window_s=60.0)


def greedy_edits(
    pacer: EditPacer, *, seconds: float, mixed: bool, seed: int = 0
) -> list[tuple[float, float]]:
    """An editor that always has something new; returns (sent, completed) times of its calls."""
    rng = random.Random(seed)
    now, calls = 0.0, []
    priority = "routine"
    for _ in range(100_000):
        if now >= seconds:
            break
        wait = pacer.delay(now, priority)
        if wait > 0:
            now += wait
            continue
        slot = pacer.reserve(now)
        done = now + rng.uniform(0.01, 0.3)  # the platform call takes a while
        pacer.release(slot, done)
        calls.append((now, done))
        now = done
        if mixed:
            priority = rng.choice(["urgent", "routine", "routine", "low"])
    return calls


@pytest.mark.parametrize("limits", [DISCORD, SLACK], ids=["discord", "slack"])
def test_published_pace_is_never_exceeded(limits: PlatformLimits):
    pacer = EditPacer.for_limits(limits)
    calls = greedy_edits(pacer, seconds=10 * limits.window_s, mixed=True)
    # The platform receives each call somewhere between send and completion: check the worst case,
    # where every call lands at its completion except the one that starts a window.
    for i, (_, done) in enumerate(calls):
        later = [sent for sent, _ in calls[i + 1 :] if sent < done + limits.window_s]
        assert 1 + len(later) <= limits.edits_per_window


@pytest.mark.parametrize("limits", [DISCORD, SLACK], ids=["discord", "slack"])
def test_a_growing_answer_uses_most_of_the_published_pace(limits: PlatformLimits):
    calls = greedy_edits(EditPacer.for_limits(limits), seconds=10 * limits.window_s, mixed=False)
    # Routine edits keep one place free and count from completion: a bit under the published rate.
    assert len(calls) >= 0.6 * 10 * limits.edits_per_window


def test_routine_edits_are_spaced_and_leave_room_for_an_urgent_one():
    pacer = EditPacer(5, 5.0)
    assert pacer.spacing_s == pytest.approx(1.25)
    slot = pacer.reserve(0.0)
    pacer.release(slot, 0.1)
    assert pacer.delay(0.5) == pytest.approx(0.85)  # routine: wait for the spacing
    assert pacer.delay(0.5, "urgent") == 0  # urgent: the window still has room


def test_urgent_edits_still_respect_the_window():
    pacer = EditPacer(3, 1.0)
    for t in (0.0, 0.1, 0.2):
        pacer.release(pacer.reserve(t), t)
    assert pacer.delay(0.3, "urgent") == pytest.approx(0.7)
    assert pacer.delay(1.0, "urgent") == 0


def test_low_priority_calls_use_only_half_the_window():
    pacer = EditPacer(5, 5.0)
    for t in (0.0, 0.0):
        pacer.release(pacer.reserve(t), t)
    assert pacer.delay(2.0, "low") == pytest.approx(3.0)  # thinking lines wait for the window...
    assert pacer.delay(2.0, "routine") == 0  # ...the answer does not
    assert pacer.delay(2.0, "urgent") == 0


def test_calls_in_flight_count_until_they_complete():
    pacer = EditPacer(2, 1.0)
    pacer.reserve(0.0)  # still in flight
    pacer.reserve(0.0)
    assert pacer.delay(5.0, "urgent") > 0  # the window is full of calls not yet answered


def test_a_429_blocks_the_channel_and_slows_the_routine_pace():
    pacer = EditPacer(5, 5.0)
    pacer.release(pacer.reserve(0.0), 0.0)
    pacer.penalize(0.0, retry_after=3.0)
    assert pacer.rate_limited == 1
    assert pacer.delay(1.0, "urgent") == pytest.approx(2.0)
    assert pacer.delay(3.0, "urgent") == 0
    # Routine edits are now spaced wider than the published 1.25 s.
    pacer.release(pacer.reserve(3.0), 3.0)
    assert pacer.delay(3.0 + 1.3) > 0


def test_registry_shares_one_pacer_per_platform_channel():
    registry = PacerRegistry()
    first = registry.for_channel(DISCORD, "C1")
    assert registry.for_channel(DISCORD, "C1") is first
    assert registry.for_channel(DISCORD, "C2") is not first
    assert registry.for_channel(SLACK, "C1") is not first


def test_registry_forgets_only_long_idle_channels():
    now = [0.0]
    registry = PacerRegistry(clock=lambda: now[0], sweep_every=1, forget_after_s=100.0)
    busy = registry.for_channel(DISCORD, "busy")
    registry.for_channel(DISCORD, "quiet")
    now[0] = 150.0
    busy.release(busy.reserve(now[0]), now[0])
    registry.for_channel(DISCORD, "new")  # triggers a sweep
    assert registry.for_channel(DISCORD, "busy") is busy
    assert len(registry) == 2  # "quiet" was dropped, "busy" and "new" kept
