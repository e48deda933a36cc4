"""Exact amounts: money in integer cents, rates in integer thousandths."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from resolvers.errors import BadUserInput

CENT = Decimal("0.01")


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def decimal_to_cents(value: Decimal, *, field: str = "amount") -> int:
    try:
        if not value.is_finite():
            raise InvalidOperation
        return int((value / CENT).to_integral_value(rounding=ROUND_HALF_UP))
    except InvalidOperation:
        raise BadUserInput(f"{field} must be a finite decimal amount, got {value!r}") from None


def milli_to_decimal(milli: int) -> Decimal:
    """1500 -> Decimal('1.5'); 1000 -> Decimal('1')."""
    value = Decimal(milli).scaleb(-3)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def decimal_to_milli(value: Decimal) -> int:
    return int((value * 1000).to_integral_value(rounding=ROUND_HALF_UP))
