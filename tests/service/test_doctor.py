"""`seedbot doctor` against working and broken set-ups: fake Slack/Discord, the fake model API, real files."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bots.doctor import GATEWAY_MESSAGE_CONTENT, Check, doctor, run_checks
from core.config import Settings
from core.store import open_store
from tests.fakes.mcp_server import mcp_config
from tests.fakes.model_server import API_KEY, FakeModelServer
from tests.service.fake_platforms import DISCORD_TOKEN, SLACK_APP_TOKEN, SLACK_BOT_TOKEN, FakePlatforms

SECRETS = (API_KEY, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, DISCORD_TOKEN)


@pytest.fixture
async def platforms() -> AsyncIterator[FakePlatforms]:
    async with FakePlatforms() as fake:
        yield fake


@pytest.fixture
def full_settings(
    make_settings: Callable[..., Settings], platforms: FakePlatforms
) -> Callable[..., Settings]:
    """Every platform configured against the fakes (Socket Mode for Slack)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "slack_bot_token": SLACK_BOT_TOKEN,
            "slack_app_token": SLACK_APP_TOKEN,
            "slack_api_url": platforms.slack_api_url,
            "discord_bot_token": DISCORD_TOKEN,
            "discord_api_base": platforms.discord_api_base,
        }
        values.update(overrides)
        return make_settings(**values)

    return build


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def test_a_working_setup_passes_every_check(full_settings, model_server: FakeModelServer):
    settings = full_settings(mcp_config=mcp_config())
    # An existing database, as after a first start.
    await (await open_store(settings)).close()

    code, table = await doctor(settings, live=True)

    assert code == 0, table
    rows = by_name(await run_checks(settings, live=True))
    expected = ["settings", "database", "model API", "model live call", "slack auth", "slack scopes"]
    expected += ["slack connection", "discord auth", "discord intents", "mcp fake"]
    assert list(rows) == expected
    assert {name: row.status for name, row in rows.items()} == dict.fromkeys(expected, "ok")
    assert "schema version" in rows["database"].detail
    assert "seedbot" in rows["slack auth"].detail and "Acme" in rows["slack auth"].detail
    assert rows["mcp fake"].detail == "ok (7 tools)"
    # The live call is a real (tiny) completion: a non-streamed request with a small max_tokens.
    live = [r for r in model_server.requests if r.path.endswith("/chat/completions")]
    assert live and all(r.body["max_tokens"] == 16 and not r.body.get("stream") for r in live)
    assert_no_secret(table)


async def test_without_live_no_completion_is_requested(full_settings, model_server: FakeModelServer):
    code, table = await doctor(full_settings(), live=False)
    assert code == 0, table
    assert "model live call" not in table
    assert model_server.requests == []


async def test_a_broken_api_key_fails_with_where_to_get_one(full_settings):
    code, table = await doctor(full_settings(aiml_api_key="sk-wrong-key-0000"), live=True)
    rows = by_name(await run_checks(full_settings(aiml_api_key="sk-wrong-key-0000"), live=True))

    assert code == 1
    assert rows["model API"].status == "fail"
    assert "invalid" in rows["model API"].detail
    assert "aimlapi.com/app/keys" in rows["model API"].fix
    assert rows["model live call"].status == "skipped"
    assert "sk-wrong-key-0000" not in table


async def test_a_missing_api_key_says_which_variable(full_settings):
    rows = by_name(await run_checks(full_settings(aiml_api_key=None)))
    assert rows["model API"].status == "fail"
    assert "AIML_API_KEY" in rows["model API"].detail


async def test_an_unreachable_model_api_names_the_url(full_settings, unused_port: int):
    base = f"http://127.0.0.1:{unused_port}/v1"
    code, table = await doctor(full_settings(aiml_base_url=base), live=False)
    rows = by_name(await run_checks(full_settings(aiml_base_url=base)))

    assert code == 1
    assert rows["model API"].status == "fail"
    assert base in rows["model API"].detail
    assert "AIML_BASE_URL" in rows["model API"].fix
    assert "fix: check AIML_BASE_URL" in table


async def test_a_model_the_endpoint_does_not_serve_is_a_warning(full_settings):
    rows = by_name(await run_checks(full_settings(model="someone/else")))
    assert rows["model API"].status == "warn"
    assert "SEEDBOT_MODEL" in rows["model API"].fix


async def test_a_missing_slack_scope_fails_and_names_it(full_settings, platforms: FakePlatforms):
    platforms.scopes.discard("files:read")
    code, table = await doctor(full_settings(), live=False)
    scopes = by_name(await run_checks(full_settings()))["slack scopes"]

    assert code == 1
    assert scopes.status == "fail"
    assert "files:read" in scopes.detail
    assert "reinstall" in scopes.fix
    assert_no_secret(table)


async def test_a_missing_optional_slack_scope_is_only_a_warning(full_settings, platforms: FakePlatforms):
    platforms.scopes.discard("assistant:write")
    code, _ = await doctor(full_settings(), live=False)
    scopes = by_name(await run_checks(full_settings()))["slack scopes"]
    assert code == 0
    assert scopes.status == "warn"
    assert "assistant:write" in scopes.detail


async def test_a_rejected_slack_token_fails_without_showing_it(full_settings):
    bad = "xoxb-999-999-notthetoken"
    code, table = await doctor(full_settings(slack_bot_token=bad), live=False)
    auth = by_name(await run_checks(full_settings(slack_bot_token=bad)))["slack auth"]
    assert code == 1
    assert auth.status == "fail" and "invalid_auth" in auth.detail
    assert "xoxb-" in auth.fix
    assert bad not in table


async def test_slack_connection_modes(full_settings):
    swapped = by_name(await run_checks(full_settings(slack_app_token=SLACK_BOT_TOKEN)))["slack connection"]
    assert swapped.status == "fail" and "not_allowed_token_type" in swapped.detail
    assert "connections:write" in swapped.fix

    no_port = full_settings(slack_app_token=None, slack_signing_secret="s3cr3t-signing")
    assert by_name(await run_checks(no_port))["slack connection"].status == "fail"
    assert "SEEDBOT_HTTP_PORT" in by_name(await run_checks(no_port))["slack connection"].fix

    http_mode = full_settings(slack_app_token=None, slack_signing_secret="s3cr3t-signing", http_port=8080)
    row = by_name(await run_checks(http_mode))["slack connection"]
    assert row.status == "ok" and "/slack/events" in row.detail


async def test_discord_without_the_message_content_intent_fails(full_settings, platforms: FakePlatforms):
    platforms.app_flags = 0
    code, table = await doctor(full_settings(), live=False)
    intents = by_name(await run_checks(full_settings()))["discord intents"]

    assert code == 1
    assert intents.status == "fail"
    assert "MESSAGE CONTENT INTENT" in intents.fix
    assert_no_secret(table)


async def test_discord_with_the_approved_intent_passes(full_settings, platforms: FakePlatforms):
    platforms.app_flags = GATEWAY_MESSAGE_CONTENT
    assert by_name(await run_checks(full_settings()))["discord intents"].status == "ok"


async def test_a_rejected_discord_token_fails_and_skips_the_intent_check(full_settings):
    rows = by_name(await run_checks(full_settings(discord_bot_token="not-a-real-discord-token")))
    assert rows["discord auth"].status == "fail"
    assert "Reset Token" in rows["discord auth"].fix
    assert rows["discord intents"].status == "skipped"


async def test_tokens_go_only_to_their_own_platform(full_settings, platforms: FakePlatforms):
    await run_checks(full_settings())
    slack = [a for a in platforms.authorizations if a.startswith("Bearer ")]
    discord = [a for a in platforms.authorizations if a.startswith("Bot ")]
    assert slack and discord
    assert all(DISCORD_TOKEN not in a for a in slack)
    assert all(SLACK_BOT_TOKEN not in a and SLACK_APP_TOKEN not in a for a in discord)


async def test_a_corrupt_database_file_fails_with_a_clear_message(make_settings, tmp_path: Path):
    database = tmp_path / "broken.db"
    database.write_bytes(b"this is not a database, just some bytes " * 200)
    settings = make_settings(database_url=f"sqlite:///{database}")

    code, table = await doctor(settings, live=False)
    row = by_name(await run_checks(settings))["database"]

    assert code == 1
    assert row.status == "fail"
    assert "corrupt" in row.detail and str(database) in row.detail
    assert "Traceback" not in table


async def test_a_database_not_created_yet_is_fine_and_is_not_created(make_settings, tmp_path: Path):
    database = tmp_path / "later.db"
    row = by_name(await run_checks(make_settings(database_url=f"sqlite:///{database}")))["database"]
    assert row.status == "ok" and "first start" in row.detail
    assert not database.exists()

    missing_dir = tmp_path / "nowhere" / "bot.db"
    row = by_name(await run_checks(make_settings(database_url=f"sqlite:///{missing_dir}")))["database"]
    assert row.status == "fail" and "does not exist" in row.detail


async def test_no_platform_configured_skips_them_and_still_passes(make_settings):
    code, table = await doctor(make_settings(), live=False)
    rows = by_name(await run_checks(make_settings()))
    assert code == 0, table
    assert rows["slack"].status == "skipped" and rows["discord"].status == "skipped"
    assert rows["mcp"].status == "skipped"


async def test_each_mcp_server_is_a_row_and_a_broken_one_only_warns(make_settings):
    good = json.loads(mcp_config())["mcpServers"]["fake"]
    config = json.dumps({"mcpServers": {"good": good, "gone": {"command": "/nope"}}})
    rows = by_name(await run_checks(make_settings(mcp_config=config)))
    assert (rows["mcp good"].status, rows["mcp good"].detail) == ("ok", "ok (7 tools)")
    assert rows["mcp gone"].status == "warn"  # the bot runs without it: doctor does not fail
    assert "command not found: /nope" in rows["mcp gone"].detail
    broken = by_name(await run_checks(make_settings(mcp_config="{not json")))["mcp"]
    assert broken.status == "fail" and "SEEDBOT_MCP_CONFIG" in broken.detail


async def test_bad_settings_are_reported_by_variable_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SEEDBOT_MAX_TOKENS", "lots")
    monkeypatch.setenv("AIML_API_KEY", "sk-env-secret-1234")

    code, table = await doctor(None, live=False)

    assert code == 1
    assert table.splitlines()[1].startswith("settings")
    assert "SEEDBOT_MAX_TOKENS" in table and "fail" in table
    assert "skipped" in table
    assert "sk-env-secret-1234" not in table


async def test_a_locked_database_fails_with_a_clear_message(make_settings, tmp_path: Path):
    database = tmp_path / "busy.db"
    settings = make_settings(database_url=f"sqlite:///{database}")
    await (await open_store(settings)).close()
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        # Another process in the middle of a write holds the lock for longer than doctor waits.
        holder.execute("BEGIN EXCLUSIVE")
        row = by_name(await run_checks(settings))["database"]
    finally:
        holder.close()
    assert row.status == "fail"
    assert "locked" in row.detail and str(database) in row.detail
