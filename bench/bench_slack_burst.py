"""Busy Slack workspace: N mentions at once in N channels, every answer through the real slack-bolt /
slack-sdk bot against the fake Slack enforcing Slack's per-workspace tier buckets (with bursts).

For each N (10, 30, 100) and each path (native streaming, SLACK_STREAM_MODE=edit) it prints when the
last whole answer (full text and footer) landed, next to the lower bound the tiers allow; 429s;
and the Slack calls each answer made. Answers are 200 tokens at 50 tok/s (4 s), as in issue #15.
Runs in about 5 minutes.

    .venv/bin/python bench/bench_slack_burst.py [--answers 10 30 100] [--modes native edit]
        [--final-edit-deadline S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bots.slack import SlackRunner
from core.config import Settings
from core.service import ChatService
from tests.fakes.model_server import API_KEY, FakeModelServer, Script
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, TIER_BUCKETS, FakeSlack

TOKENS, TOKENS_PER_S = 200, 50.0
ANSWER = Script(content="".join(f"w{n:03d} " for n in range(TOKENS)), chunk_chars=5, delay_s=1 / TOKENS_PER_S)
ANSWER_S = TOKENS / TOKENS_PER_S
WRITES = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")
POLL_S = 0.1


def lower_bound_s(answers: int, mode: str) -> float:
    """The earliest the last answer can be whole under the tiers: all answers end at ANSWER_S; a posted
    answer then needs one chat.update, a streamed one an appendStream (streams open while
    chat.startStream has budget: its burst plus what refills while the answers are written)."""

    def drain_s(calls: float, method: str) -> float:
        per_minute, burst = TIER_BUCKETS[method]
        return max(0.0, calls - burst) / (per_minute / 60.0)

    streams = 0
    if mode == "native":
        per_minute, burst = TIER_BUCKETS["chat.startStream"]
        streams = min(answers, int(burst + per_minute / 60.0 * ANSWER_S))
    return ANSWER_S + max(drain_s(answers - streams, "chat.update"), drain_s(streams, "chat.appendStream"))


async def run(answers: int, mode: str, workdir: Path, final_edit_deadline_s: float | None) -> dict[str, Any]:
    overrides: dict[str, Any] = (
        {} if final_edit_deadline_s is None else {"final_edit_deadline_s": final_edit_deadline_s}
    )
    async with FakeSlack() as slack, FakeModelServer() as model:
        slack.enforce_tiers()
        alice = slack.add_user("alice")
        channels = [slack.add_channel(f"busy{n}", members=[alice]) for n in range(answers)]
        settings = Settings(
            _env_file=None,
            aiml_api_key=API_KEY,
            aiml_base_url=model.base_url,
            database_url=f"sqlite:///{workdir / f'{mode}-{answers}.db'}",
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=slack.api_url,
            slack_stream_mode=mode,
            **overrides,
        )
        service = await ChatService.open(settings)
        runner = SlackRunner(settings, service)
        await runner.start(connect_timeout_s=10)
        await slack.socket.connected.wait()
        model.enqueue(*[ANSWER] * answers)
        started = time.monotonic()
        prompts = await asyncio.gather(
            *(
                slack.post(alice, channel, f"<@{BOT_USER_ID}> question {n}")
                for n, channel in enumerate(channels)
            )
        )
        whole_at: dict[str, float] = {}
        deadline = started + 10 * lower_bound_s(answers, mode) + 60
        # Until every answer is whole, or the bot has finished with them (some gave up on their finals).
        while len(whole_at) < answers and time.monotonic() < deadline:
            done = len(model.requests) >= answers and runner.bot.work.busy == 0
            for channel, ts in zip(channels, prompts, strict=True):
                if channel not in whole_at and _whole(slack, channel, ts):
                    whole_at[channel] = time.monotonic() - started
            if done:
                break
            await asyncio.sleep(POLL_S)
        await runner.bot.work.idle(60.0)
        await runner.stop(grace_s=5)
        await service.close()
        calls = Counter(call.method for call in slack.calls if call.method in WRITES)
        return {
            "whole": len(whole_at),
            "last_whole_s": max(whole_at.values(), default=float("nan")),
            "median_whole_s": sorted(whole_at.values())[len(whole_at) // 2] if whole_at else float("nan"),
            "bound_s": lower_bound_s(answers, mode),
            "429s": len(slack.rate_limited_calls()),
            "429_methods": ", ".join(sorted({call.method for call in slack.rate_limited_calls()})),
            "writes_per_answer": sum(calls.values()) / answers,
            "streams": calls["chat.startStream"],
            "statuses": sum(1 for _, _, status in slack.statuses if status),
        }


def _whole(slack: FakeSlack, channel: str, ts: str) -> bool:
    replies = slack.bot_messages(channel, thread_ts=ts)
    return (
        bool(replies) and replies[0].text.startswith(ANSWER.content.strip()) and replies[0].text.endswith("_")
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--modes", nargs="+", choices=("native", "edit"), default=["native", "edit"])
    parser.add_argument(
        "--final-edit-deadline", type=float, help="SEEDBOT_FINAL_EDIT_DEADLINE_S (default: the setting's)"
    )
    args = parser.parse_args()
    print(
        "answers | path   | whole | last whole (s) | median whole (s) | tier lower bound (s) | 429s"
        " | Slack writes/answer | native streams | thinking statuses"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for answers in args.answers:
            for mode in args.modes:
                r = await run(answers, mode, Path(workdir), args.final_edit_deadline)
                print(
                    f"{answers:7d} | {mode:6s} | {r['whole']:5.0f} | {r['last_whole_s']:14.1f} |"
                    f" {r['median_whole_s']:16.1f} | {r['bound_s']:20.1f} | {r['429s']:4.0f} |"
                    f" {r['writes_per_answer']:19.1f} | {r['streams']:14.0f} | {r['statuses']:17.0f}"
                    + (f"  (429s: {r['429_methods']})" if r["429s"] else ""),
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
