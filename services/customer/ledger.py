"""The money rules of purchases and refunds, on integer minor units (pure)."""

from __future__ import annotations


class RefundRefused(ValueError):
    """A refund that would give back more than was paid."""


def refund_amount(*, paid: int, refunded: int, requested: int | None) -> int:
    """What this refund gives back: ``requested``, or all that is left; never more than is left."""
    left = paid - refunded
    if left <= 0:
        raise RefundRefused("This purchase is already refunded in full.")
    if requested is None:
        return left
    if requested <= 0:
        raise RefundRefused("A refund must give back something.")
    if requested > left:
        raise RefundRefused(f"At most {left} minor units are left to refund of {paid} paid.")
    return requested
