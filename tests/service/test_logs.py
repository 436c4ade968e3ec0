"""Service logs: one line per event, JSON lines on request, request ids carried, secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bots.logs import REDACTED, configure_logging
from core.config import Settings

API_KEY = "sk-aiml-0123456789abcdef"
SLACK_BOT = "xoxb-1111-2222-abcdefABCDEF"
SLACK_APP = "xapp-1-A111-2222-deadbeef"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
DISCORD = "MTE5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz0123"
SECRETS = (API_KEY, SLACK_BOT, SLACK_APP, SIGNING, DISCORD)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "aiml_api_key": API_KEY,
        "slack_bot_token": SLACK_BOT,
        "slack_app_token": SLACK_APP,
        "slack_signing_secret": SIGNING,
        "discord_bot_token": DISCORD,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def configured(**overrides: object) -> io.StringIO:
    out = io.StringIO()
    configure_logging(settings(**overrides), stream=out)
    return out


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_json_lines_carry_time_level_logger_message_request_id_and_extras():
    out = configured(log_format="json")
    logging.getLogger("seedbot.service").info(
        "answered in %.1f s", 4.25, extra={"request_id": "req-42", "platform": "slack", "tokens": 1272}
    )
    [line] = lines(out)
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "seedbot.service"
    assert entry["message"] == "answered in 4.2 s"
    assert entry["request_id"] == "req-42"
    assert entry["platform"] == "slack"
    assert entry["tokens"] == 1272
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_every_event_is_one_line_in_both_formats():
    for log_format in ("json", "text"):
        out = configured(log_format=log_format)
        log = logging.getLogger("seedbot.test")
        log.warning("first line\nsecond line")
        try:
            raise ValueError("broken\nvalue")
        except ValueError:
            log.exception("it failed", extra={"request_id": "r1"})
        assert len(lines(out)) == 2, (log_format, out.getvalue())
        assert "ValueError" in lines(out)[1]


def test_text_lines_put_the_request_id_first_among_extras():
    out = configured(log_format="text")
    logging.getLogger("seedbot.slack").info("posted", extra={"channel": "C1", "request_id": "req-7"})
    [line] = lines(out)
    assert " INFO seedbot.slack: posted request_id=req-7 channel=C1" in line


def test_level_comes_from_settings():
    out = configured(log_level="WARNING")
    logging.getLogger("seedbot.test").info("chatter")
    logging.getLogger("seedbot.test").warning("worth seeing")
    assert [line.split(": ", 1)[1] for line in lines(out)] == ["worth seeing"]


def test_configuring_again_replaces_the_handler_instead_of_doubling_lines():
    configured()
    out = configured()
    logging.getLogger("seedbot.test").warning("once")
    assert len(lines(out)) == 1
    assert sum(getattr(h, "_seedbot", False) for h in logging.getLogger().handlers) == 1


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_setting_secrets_never_reach_the_log(log_format: str):
    out = configured(log_format=log_format)
    log = logging.getLogger("seedbot.test")
    log.info("key is %s and app token %s", API_KEY, SLACK_APP)
    log.info(f"signing secret {SIGNING} inline")
    log.info("headers", extra={"auth": {"Authorization": f"Bot {DISCORD}"}, "token": SLACK_BOT})
    try:
        raise ConnectionError(f"refused for token {DISCORD} / {SLACK_BOT}")
    except ConnectionError:
        log.exception("call failed")
    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text
    assert text.count(REDACTED) >= 7
    assert "call failed" in text and "ConnectionError" in text


def test_token_shaped_strings_are_masked_even_when_not_configured():
    out = configured(aiml_api_key=None, slack_bot_token=None, slack_app_token=None, discord_bot_token=None)
    log = logging.getLogger("seedbot.test")
    log.warning("sent Authorization: Bearer abcdef0123456789xyz to upstream")
    log.warning("someone pasted xoxb-9999-8888-ZZZZzzzz and xapp-1-B2-333-cafe and xoxp-1-2-3-4abc")
    text = out.getvalue()
    for leaked in ("abcdef0123456789xyz", "xoxb-9999", "xapp-1-B2", "xoxp-1-2"):
        assert leaked not in text
    assert "Bearer [REDACTED]" in text
    # Ordinary words survive the masking.
    assert "to upstream" in text and "someone pasted" in text


def test_library_loggers_are_redacted_too():
    out = configured(log_format="json")
    logging.getLogger("slack_bolt.App").error("auth failed with %s", SLACK_BOT)
    [line] = lines(out)
    assert json.loads(line)["message"] == f"auth failed with {REDACTED}"
