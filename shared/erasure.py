"""What every service does when a customer is erased, beyond purging its own tables.

Its dead letters about the person go, its retained outbox events lose their personal fields, and
once the transaction commits the database leaves no earlier copy on disk. The broker's copies are
unreadable by then: the customer's key was destroyed when the erasure was published
(``shared.sealing``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from shared import dead_letters, outbox
from shared.db import erased_in


async def forget(customer_ids: Sequence[uuid.UUID], *, session: AsyncSession) -> None:
    await dead_letters.forget(list(customer_ids), session=session)
    await outbox.redact(customer_ids, session=session)
    erased_in(session)
