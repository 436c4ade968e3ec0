"""The `seedbot` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from core.config import EFFORTS, ConfigError, Settings, load_settings
from core.usage_export import EXPORT_FORMATS, EXPORT_GROUPS

EXIT_CONFIG = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedbot", description="Slack and Discord bot for Dola Seed 2.0 Lite on the AI/ML API."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = commands.add_parser("ask", help="ask one question and stream the answer to the terminal")
    ask.add_argument("prompt")
    ask.add_argument("--image", action="append", default=[], metavar="PATH|URL", help="repeatable")
    ask.add_argument("--video", action="append", default=[], metavar="PATH|URL", help="repeatable")
    ask.add_argument("--file", action="append", default=[], metavar="PATH", help="any document; repeatable")
    ask.add_argument("--effort", choices=EFFORTS, help="reasoning effort (default: SEEDBOT_DEFAULT_EFFORT)")
    ask.add_argument("--json", action="store_true", help="print one JSON result instead of streaming text")

    run = commands.add_parser("run", help="run the bot on every configured platform (or the ones named)")
    run.add_argument("platforms", nargs="*", metavar="slack|discord", help="default: every configured one")

    commands.add_parser("chat", help="talk to the bot in this terminal (same store, effort and costs)")

    doctor = commands.add_parser("doctor", help="check settings, database, model API, Slack and Discord")
    doctor.add_argument("--live", action="store_true", help="also make a tiny real model call")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply pending schema migrations")
    copy = db_commands.add_parser(
        "copy", help="copy a SQLite database into PostgreSQL, then verify row counts and ledger sums"
    )
    copy.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH.db")
    copy.add_argument("--to", dest="target", required=True, metavar="postgresql://…")
    copy.add_argument("--force", action="store_true", help="replace the contents of a target that holds data")

    usage = commands.add_parser("usage", help="the usage ledger")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True, metavar="ACTION")
    export = usage_commands.add_parser(
        "export", help="write the ledger (or totals per group) as CSV or JSON Lines"
    )
    export.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first UTC day (default: the first)")
    export.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last UTC day, included")
    export.add_argument("--by", choices=EXPORT_GROUPS, help="totals per group instead of one row per call")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv", help="json: one object a line")
    export.add_argument("--output", type=Path, metavar="FILE", help="default: standard output")
    return parser


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-05-31") from None


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        print(f"seedbot: configuration problem:\n{error}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run" and not set(args.platforms) <= {"slack", "discord"}:
        parser.error(f"run: unknown platform in {' '.join(args.platforms)!r}; choose slack or discord")
    if args.command == "db" and args.db_command == "copy":
        # Both databases are named on the command line; the settings play no part.
        from bots.db_copy import db_copy

        return db_copy(parser, args.source, args.target, force=args.force)
    if args.command == "doctor":
        from bots.doctor import doctor

        # Doctor loads the settings itself, so bad ones become a row of its table, not an early exit.
        code, table = asyncio.run(doctor(None, live=args.live))
        print(table)
        return code
    settings = _settings()
    if args.command == "ask":
        from bots.terminal.ask import ask

        return asyncio.run(
            ask(
                settings,
                args.prompt,
                images=args.image,
                videos=args.video,
                files=args.file,
                effort=args.effort,
                as_json=args.json,
            )
        )
    if args.command == "run":
        from bots.run import run

        return asyncio.run(run(settings, args.platforms))
    if args.command == "chat":
        from bots.terminal.chat import chat

        if settings.aiml_api_key is None:
            print("AIML_API_KEY is not set; create a key at https://aimlapi.com/app/keys", file=sys.stderr)
            return EXIT_CONFIG
        return asyncio.run(chat(settings))
    if args.command == "db":
        from core.store import StoreError, upgrade

        try:
            version = asyncio.run(upgrade(settings))
        except StoreError as error:
            print(f"seedbot: {error}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"database is at schema version {version}")
        return 0
    if args.command == "usage":
        from bots.export import usage_export

        return asyncio.run(
            usage_export(
                settings, since=args.since, until=args.until, by=args.by, fmt=args.format, output=args.output
            )
        )
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
