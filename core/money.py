"""How an amount of US dollars is shown to people: footers, budget refusals and /cost reports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def format_usd(amount: Decimal) -> str:
    """`$0.50`, `$0.0033`, `$12.35`: cents for big amounts, up to four decimals below a dollar."""
    if amount == 0:
        return "$0.00"
    if 0 < amount < Decimal("0.0001"):
        return "<$0.0001"
    places = Decimal("0.01") if abs(amount) >= 1 else Decimal("0.0001")
    text = f"{amount.quantize(places, ROUND_HALF_UP):,f}"
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.rstrip('0').ljust(2, '0')}"


def format_limit(limit: Decimal | None) -> str:
    """A budget: its amount, or "unlimited" where none is set."""
    return "unlimited" if limit is None else format_usd(limit)
