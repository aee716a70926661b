"""Marking customers whose 360 view a transaction changed (``view_model`` rebuilds them before commit).

Apart from ``view_model`` so that the modules that write can import it without import cycles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

DIRTY = "csm.customer.view_dirty"


def touch(customer_ids: Iterable[uuid.UUID], *, session: AsyncSession | Session) -> None:
    """Mark customers whose view this transaction changed by a statement that bypassed the ORM."""
    dirty: set[uuid.UUID] = session.info.setdefault(DIRTY, set())
    dirty.update(customer_ids)
