"""Where the complaint policy is kept: one row per version, the newest in force.

Version 0 is the built-in default (``policy.default_policy``) until an operator stores one.
Versions never change once written, so a process may keep the ones it has read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import PolicyVersion
from services.complaints.policy import ComplaintPolicy, default_policy
from shared.versioning import add_next_version, latest_version

_read: dict[tuple[str, int], ComplaintPolicy] = {}


def _cache_key(version: int, *, session: AsyncSession) -> tuple[str, int]:
    return (str(session.get_bind().engine.url), version)


async def current_version(*, session: AsyncSession) -> int:
    return await latest_version(session=session, version=PolicyVersion.version)


async def at_version(version: int, *, session: AsyncSession, currency: str) -> ComplaintPolicy:
    if version == 0:
        return default_policy(currency)
    key = _cache_key(version, session=session)
    if key not in _read:
        row = await session.get(PolicyVersion, version)
        if row is None:
            # A version a complaint remembers is never deleted; fall back rather than fail the complaint.
            return await current(session=session, currency=currency)
        _read[key] = ComplaintPolicy.model_validate(row.document)
    return _read[key]


async def current(*, session: AsyncSession, currency: str) -> ComplaintPolicy:
    return await at_version(await current_version(session=session), session=session, currency=currency)


async def store(
    *, session: AsyncSession, policy: ComplaintPolicy, actor: str, now: datetime
) -> PolicyVersion:
    """Store the next version; a concurrent store of the same version is a ConcurrentVersion (409)."""
    return await add_next_version(
        lambda version: PolicyVersion(
            version=version, document=policy.model_dump(mode="json"), created_by=actor, created_at=now
        ),
        session=session,
        version=PolicyVersion.version,
    )
