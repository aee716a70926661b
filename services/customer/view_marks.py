"""Marking customers whose 360 view a transaction changed (``view_model`` rebuilds them before commit).

Apart from ``view_model`` so that the modules that write can import it without import cycles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.unit_of_work import Slot, unit_of

# The customers whose view the unit of work changed.
DIRTY: Slot[set[uuid.UUID]] = Slot("customer.view_dirty")


def touch(customer_ids: Iterable[uuid.UUID], *, session: AsyncSession | Session) -> None:
    """Mark customers whose view this transaction changed by a statement that bypassed the ORM."""
    unit_of(session).cache.setdefault(DIRTY, set).update(customer_ids)
