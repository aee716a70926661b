"""The versioned documents of notify, the playbook library and the policy: the highest version is in force.

Shipped defaults are version 0 of their keys and live in code (``defaults.py``); every save
over the API adds a version, so history is kept and a run that waits keeps the version it
started with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.defaults import default_playbooks
from services.notify.models import PlaybookVersion, PolicyVersion
from services.notify.playbooks import PlaybookDefinition
from services.notify.policy import Policy
from shared.unit_of_work import Slot, unit_of
from shared.versioning import add_next_version

SHIPPED_BY = "csm (shipped default)"


@dataclass(frozen=True)
class Playbook:
    key: str
    version: int
    definition: PlaybookDefinition
    created_by: str
    created_at: datetime | None


@cache
def shipped() -> dict[str, Playbook]:
    return {
        key: Playbook(key=key, version=0, definition=definition, created_by=SHIPPED_BY, created_at=None)
        for key, definition in default_playbooks().items()
    }


# Saved versions never change, so a parsed definition is cached by its row id.
_PARSED: dict[uuid.UUID, PlaybookDefinition] = {}
# Per unit of work: every playbook's highest version, read once per transaction.
_SESSION_CACHE: Slot[dict[str, Playbook]] = Slot("notify.playbooks")


def _from_row(row: PlaybookVersion) -> Playbook:
    definition = _PARSED.get(row.id)
    if definition is None:
        definition = PlaybookDefinition.model_validate(row.definition)
        _PARSED[row.id] = definition
    return Playbook(row.key, row.version, definition, row.created_by, row.created_at)


async def in_force(*, session: AsyncSession) -> dict[str, Playbook]:
    """Every playbook's highest version (shipped defaults included), cached for the session."""
    cached = unit_of(session).cache.get(_SESSION_CACHE)
    if cached is not None:
        return cached
    latest = (
        sa.select(PlaybookVersion.key, sa.func.max(PlaybookVersion.version).label("version"))
        .group_by(PlaybookVersion.key)
        .subquery()
    )
    rows = (
        await session.scalars(
            sa.select(PlaybookVersion).join(
                latest,
                sa.and_(PlaybookVersion.key == latest.c.key, PlaybookVersion.version == latest.c.version),
            )
        )
    ).all()
    found = dict(shipped())
    for row in rows:
        found[row.key] = _from_row(row)
    unit_of(session).cache.put(_SESSION_CACHE, found)
    return found


async def version_of(key: str, version: int, *, session: AsyncSession) -> Playbook | None:
    if version == 0:
        return shipped().get(key)
    row = await session.scalar(
        sa.select(PlaybookVersion).where(PlaybookVersion.key == key, PlaybookVersion.version == version)
    )
    return _from_row(row) if row else None


async def history(key: str, *, session: AsyncSession) -> list[Playbook]:
    """Every version of a playbook, newest first."""
    rows = (
        await session.scalars(
            sa.select(PlaybookVersion)
            .where(PlaybookVersion.key == key)
            .order_by(PlaybookVersion.version.desc())
        )
    ).all()
    versions = [_from_row(row) for row in rows]
    if key in shipped():
        versions.append(shipped()[key])
    return versions


async def save(
    *, session: AsyncSession, key: str, definition: PlaybookDefinition, actor: str, now: datetime
) -> Playbook:
    """Add a version; two saves racing for the same number: the second is a ConcurrentVersion (409)."""
    row = await add_next_version(
        lambda version: PlaybookVersion(
            key=key,
            version=version,
            definition=definition.model_dump(mode="json"),
            created_by=actor,
            created_at=now,
        ),
        session=session,
        version=PlaybookVersion.version,
        where=(PlaybookVersion.key == key,),
    )
    unit_of(session).cache.pop(_SESSION_CACHE)
    return _from_row(row)


@dataclass(frozen=True)
class PolicyInForce:
    version: int
    policy: Policy
    created_by: str
    created_at: datetime | None


# Per unit of work: the policy in force, read once per transaction.
_POLICY_CACHE: Slot[PolicyInForce] = Slot("notify.policy")


async def policy(*, session: AsyncSession) -> PolicyInForce:
    cached = unit_of(session).cache.get(_POLICY_CACHE)
    if cached is not None:
        return cached
    row = await session.scalar(sa.select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1))
    found = (
        PolicyInForce(row.version, Policy.model_validate(row.document), row.created_by, row.created_at)
        if row
        else PolicyInForce(0, Policy(), SHIPPED_BY, None)
    )
    unit_of(session).cache.put(_POLICY_CACHE, found)
    return found


async def save_policy(*, session: AsyncSession, document: Policy, actor: str, now: datetime) -> PolicyInForce:
    row = await add_next_version(
        lambda version: PolicyVersion(
            version=version, document=document.model_dump(mode="json"), created_by=actor, created_at=now
        ),
        session=session,
        version=PolicyVersion.version,
    )
    unit_of(session).cache.pop(_POLICY_CACHE)
    return PolicyInForce(row.version, document, actor, now)
