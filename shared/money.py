"""Money is stored as integer minor units (cents, fen); amounts cross the API as decimals."""

from __future__ import annotations

from decimal import Decimal

MINOR_PER_UNIT = 100


def to_minor(amount: Decimal) -> int:
    return int((amount * MINOR_PER_UNIT).to_integral_exact())


def from_minor(minor: int) -> Decimal:
    return (Decimal(minor) / MINOR_PER_UNIT).quantize(Decimal("0.01"))
