"""`seedbot db copy`: a populated SQLite database arrives whole in PostgreSQL, verified, once."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from bots.cli import main
from bots.db_copy import progress_printer
from core.config import load_settings
from core.models import AttachmentMeta, ConversationKey
from core.store import open_store, upgrade
from core.store.base import Feedback, ReservationRequest, SettingChange, Store, UsageFilter, UsageTotals
from tests.core.store.entries import NOW, entry

THREAD = ConversationKey("slack", "T1", "C1", "1700000000.000100")
OTHER = ConversationKey("discord", "G1", "C9", "")
PHOTO = AttachmentMeta("image", "image/jpeg", 123_456, "ab" * 32, "photo.jpg", "F123")
CLIP = AttachmentMeta("video", "video/mp4", 9_999_999, "cd" * 32, "clip.mp4", "https://files.example/clip")
PASSWORD = "copy-secret-password"


async def populate(store: Store) -> None:
    await store.add_message(
        THREAD, "user", "U1", "Ann", "what is in these?", attachments=[PHOTO, CLIP], at=NOW
    )
    reply = await store.add_message(
        THREAD, "assistant", "B1", "Seed", "a long answer", platform_message_id="r1"
    )
    await store.add_message_parts(reply, ["r1", "r2", "r3"])
    await store.add_message(OTHER, "assistant", "B1", "Seed", "half", status="streaming", owner="bot-1")
    await store.set_setting("effort", "high", "channel", "slack", "C1")
    await store.set_setting("system_prompt", "Be brief.", "workspace", "discord", "G1")
    await store.record_setting_change(
        SettingChange("ann (console)", "effort", "channel", "slack", "C1", None, "high", at=NOW)
    )
    await store.claim_event("slack", "Ev1")
    await store.record_feedback(
        Feedback("slack", "T1", "C1", "r3", "U2", "down", "high", 3, Decimal("0.012345678"), reply, at=NOW)
    )
    # Amounts down to the nano-dollar, which the copy must keep exactly.
    await store.record_usage(*(entry(usd=Decimal("0.000000001") * (n + 1)) for n in range(50)))
    await store.record_usage(entry(platform="discord", workspace="G1", usd=Decimal("12.345678901")))
    await store.reserve_budget(ReservationRequest("slack", "T1", "U1", Decimal("1"), None, None))


async def snapshot(url: str) -> tuple[object, ...]:
    """Everything a store answers about the populated data."""
    store = await open_store(load_settings(_env_file=None, DATABASE_URL=url))
    try:
        return (
            await store.conversation(THREAD),
            await store.conversation(OTHER),
            await store.find_by_platform_message("slack", "r3"),
            await store.resolve_setting("effort", "slack", "T1", "C1", "U1"),
            await store.resolve_setting("system_prompt", "discord", "G1"),
            await store.usage_totals(UsageFilter("slack")),
            await store.usage_breakdown(UsageFilter("discord"), "workspace"),
            await store.setting_changes(),
            await store.disliked_answers(),
        )
    finally:
        await store.close()


@pytest.fixture
def source(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"

    async def build() -> None:
        store = await open_store(load_settings(_env_file=None, DATABASE_URL=url))
        try:
            await populate(store)
        finally:
            await store.close()

    asyncio.run(build())
    return url


def copy(source: str, target: str, *extra: str) -> int:
    return main(["db", "copy", "--from", source, "--to", target, *extra])


def test_everything_arrives_and_is_verified(
    source: str, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert copy(source, postgres_url) == 0

    out, err = capsys.readouterr()
    assert out.startswith("copied and verified: 2 conversations, 3 messages, 2 attachments, 3 message_parts,")
    assert "ledger total $12.345680176" in out
    # Progress goes to stderr as plain lines when it is not a terminal.
    assert "copying messages: 3 of 3 rows\n" in err and "\r" not in err
    assert asyncio.run(snapshot(source)) == asyncio.run(snapshot(postgres_url))


def test_the_copy_goes_on_where_the_source_left_off(source: str, postgres_url: str) -> None:
    assert copy(source, postgres_url) == 0

    async def carry_on() -> None:
        store = await open_store(load_settings(_env_file=None, DATABASE_URL=postgres_url))
        try:
            # New rows get ids past the copied ones; copied events and request ids are known.
            new = await store.add_message(THREAD, "user", "U1", "Ann", "and now?")
            assert [m.text for m in await store.conversation(THREAD)][-1] == "and now?"
            assert new > max(m.id for m in await store.conversation(OTHER))
            assert not await store.claim_event("slack", "Ev1")
            (recovered,) = await store.recover_streaming()
            assert recovered.text == "half"
        finally:
            await store.close()

    asyncio.run(carry_on())


def test_copying_again_changes_nothing_and_needs_force(
    source: str, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert copy(source, postgres_url) == 0
    first = asyncio.run(snapshot(postgres_url))
    capsys.readouterr()

    assert copy(source, postgres_url) == 1
    err = capsys.readouterr().err
    assert "the target database is not empty (2 conversations, 3 messages" in err
    assert "add --force to replace its contents" in err

    assert copy(source, postgres_url, "--force") == 0
    assert asyncio.run(snapshot(postgres_url)) == first


def test_a_target_that_loses_rows_fails_the_verification_and_keeps_nothing(
    source: str, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def lose_the_smallest_charge() -> None:
        await upgrade(load_settings(_env_file=None, DATABASE_URL=postgres_url))
        connection = await asyncpg.connect(postgres_url)
        try:
            await connection.execute(
                "CREATE FUNCTION lose_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
            )
            await connection.execute(
                "CREATE TRIGGER lose_row BEFORE INSERT ON usage_ledger FOR EACH ROW"
                " WHEN (new.usd = 0.000000001) EXECUTE FUNCTION lose_row()"
            )
        finally:
            await connection.close()

    asyncio.run(lose_the_smallest_charge())
    assert copy(source, postgres_url) == 1

    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        "seedbot: verification failed, nothing was copied: usage_ledger: 51 rows in the source, 50 in the"
        " target; ledger: $12.345680176 in the source, $12.345680175 in the target"
    )
    empty = asyncio.run(snapshot(postgres_url))
    assert empty[0] == [] and empty[5] == UsageTotals()


def test_an_unreachable_target_is_one_line_without_the_password(
    source: str, unused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"postgresql://seedbot:{PASSWORD}@127.0.0.1:{unused_port}/seedbot"
    assert copy(source, target) == 3

    err = capsys.readouterr().err
    assert PASSWORD not in err and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"seedbot: cannot reach PostgreSQL at 127.0.0.1:{unused_port}")


def test_the_urls_must_be_sqlite_then_postgresql(
    source: str, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as backwards:
        copy(postgres_url, source)
    assert backwards.value.code == 2
    assert "--from takes a sqlite:///path.db URL" in capsys.readouterr().err

    assert copy(f"sqlite:///{tmp_path / 'missing.db'}", postgres_url) == 3
    assert "there is no SQLite database at" in capsys.readouterr().err


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    report = progress_printer(screen)
    report("usage_ledger", 20_000, 50_000)
    report("usage_ledger", 50_000, 50_000)
    assert screen.getvalue() == (
        "\rcopying usage_ledger: 20,000 of 50,000 rows\x1b[K"
        "\rcopying usage_ledger: 50,000 of 50,000 rows\x1b[K\n"
    )
