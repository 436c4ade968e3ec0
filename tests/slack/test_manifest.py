"""The app manifest in deploy/slack declares everything the adapter listens to and needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.slack.commands import SHORTCUT_ID
from bots.slack.runner import EVENTS_PATH
from bots.slack.scopes import BOT_SCOPES

MANIFEST = Path(__file__).parents[2] / "deploy" / "slack" / "manifest.yaml"


@pytest.fixture(scope="module")
def manifest_lines() -> list[str]:
    return [line.split("#", 1)[0].strip() for line in MANIFEST.read_text().splitlines()]


def test_every_event_the_app_handles_is_subscribed(manifest_lines: list[str]):
    events = {"app_mention", "message.channels", "message.groups", "message.im", "message.mpim"}
    events |= {"assistant_thread_started", "assistant_thread_context_changed"}
    assert {f"- {event}" for event in events} <= set(manifest_lines)


def test_the_command_shortcut_and_socket_mode_are_declared(manifest_lines: list[str]):
    assert "- command: /seed" in manifest_lines
    assert f"callback_id: {SHORTCUT_ID}" in manifest_lines
    assert "socket_mode_enabled: true" in manifest_lines
    assert "assistant_view:" in manifest_lines


def test_it_asks_for_exactly_the_scopes_the_adapter_uses(manifest_lines: list[str]):
    bot_section = manifest_lines[manifest_lines.index("bot:") + 1 : manifest_lines.index("settings:")]
    asked = {line.removeprefix("- ").split(" #")[0].strip() for line in bot_section}
    assert asked == BOT_SCOPES


def test_http_mode_points_slack_at_the_path_the_runner_serves():
    assert f"https://<your host>{EVENTS_PATH}" in MANIFEST.read_text()
