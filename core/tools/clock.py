"""`current_time`: the date and time now, in UTC and optionally in an IANA time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.tools.base import Tool, ToolContext, ToolResult

_FORMAT = "%A %Y-%m-%d %H:%M:%S %Z (UTC%z)"


class CurrentTime(Tool):
    name = "current_time"
    description = (
        "The current date and time in UTC, and in a time zone when one is given. Use it for anything "
        "that depends on today's date or the time of day."
    )
    parameters = {  # noqa: RUF012
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "An IANA time zone name such as Europe/Paris or America/New_York.",
            }
        },
    }

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        now = self._now().astimezone(UTC)
        lines = [f"UTC: {now.strftime(_FORMAT)}", f"ISO 8601: {now.isoformat(timespec='seconds')}"]
        zone_name = args.get("timezone")
        if zone_name is not None:
            if not isinstance(zone_name, str):
                return ToolResult.error("timezone must be a string such as Europe/Paris.")
            try:
                zone = ZoneInfo(zone_name.strip())
            except (ZoneInfoNotFoundError, ValueError):
                return ToolResult.error(
                    f"Unknown time zone {zone_name!r}; use an IANA name such as Europe/Paris.\n" + lines[0]
                )
            local = now.astimezone(zone)
            lines.insert(0, f"{zone.key}: {local.strftime(_FORMAT)}")
        return ToolResult(text="\n".join(lines), summary="Checked the time")

    def status_text(self, args: dict[str, Any]) -> str:
        return "🔧 Checking the time…"
