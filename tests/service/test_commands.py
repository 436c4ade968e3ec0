"""`seedbot doctor` and `seedbot db upgrade` as an operator runs them: the real command, a subprocess."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.store.migrations import LATEST_VERSION
from tests.fakes.model_server import API_KEY
from tests.process import REPO, SEEDBOT, seedbot_environment
from tests.service.fake_platforms import DISCORD_TOKEN, SLACK_APP_TOKEN, SLACK_BOT_TOKEN, FakePlatforms


async def seedbot(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *SEEDBOT, *args, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_doctor_passes_a_working_setup_and_names_what_is_broken(model_server, tmp_path: Path):
    async with FakePlatforms() as platforms:
        env = seedbot_environment(
            model_server,
            tmp_path / "doctor.db",
            SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
            SLACK_APP_TOKEN=SLACK_APP_TOKEN,
            SLACK_API_URL=platforms.slack_api_url,
            DISCORD_BOT_TOKEN=DISCORD_TOKEN,
            DISCORD_API_BASE=platforms.discord_api_base,
        )
        assert (await seedbot("db", "upgrade", env=env))[0] == 0
        code, table = await seedbot("doctor", "--live", env=env)
        assert code == 0, table
        assert " fail " not in table

        platforms.scopes.discard("files:read")
        env["AIML_API_KEY"] = "sk-wrong"
        code, table = await seedbot("doctor", env=env)
    assert code == 1
    assert "files:read" in table
    assert "AIML_API_KEY" in table
    for secret in ("sk-wrong", API_KEY, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, DISCORD_TOKEN):
        assert secret not in table


async def test_db_upgrade_reports_the_schema_version_and_a_corrupt_file_clearly(model_server, tmp_path: Path):
    env = seedbot_environment(model_server, tmp_path / "fresh.db")
    code, out = await seedbot("db", "upgrade", env=env)
    assert code == 0 and "schema version" in out

    (tmp_path / "corrupt.db").write_bytes(b"this is not a database" * 100)
    code, out = await seedbot("db", "upgrade", env=seedbot_environment(model_server, tmp_path / "corrupt.db"))
    assert code == 3
    assert "Traceback" not in out and "corrupt.db" in out


async def test_db_upgrade_and_doctor_on_postgresql_never_show_the_password(
    model_server, tmp_path: Path, postgres_url: str, unused_port: int
):
    password = "pg-secret-in-the-url"
    with_password = postgres_url.replace("postgres@", f"postgres:{password}@")
    env = seedbot_environment(model_server, tmp_path / "unused.db", DATABASE_URL=with_password)
    code, out = await seedbot("db", "upgrade", env=env)
    assert (code, out) == (0, f"database is at schema version {LATEST_VERSION}\n")
    code, table = await seedbot("doctor", env=env)
    assert f"{postgres_url.split('?')[0]}, schema version {LATEST_VERSION}" in table
    assert password not in table

    env["DATABASE_URL"] = f"postgresql://bot:{password}@127.0.0.1:{unused_port}/seedbot"
    code, out = await seedbot("db", "upgrade", env=env)
    assert code == 3
    assert out == (
        f"seedbot: cannot reach PostgreSQL at 127.0.0.1:{unused_port}: connection refused (is it running?);"
        " check DATABASE_URL\n"
    )
