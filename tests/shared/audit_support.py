"""Reading a service's audit log in tests, as a manager would."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.roles import Role
from tests.harness import RunningService, auth

MANAGER = auth(Role.manager, subject="manager-audit")


async def entries(service: RunningService, **params: str) -> list[dict[str, Any]]:
    """Every entry the filters match, newest first, through the pages of ``GET /audit``."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await service.client.get("/audit", params=query, headers=MANAGER)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def the_entry(service: RunningService, action: str) -> dict[str, Any]:
    """The one entry of ``action``."""
    found = await entries(service, action=action)
    assert len(found) == 1, found
    return found[0]


def by(entry: dict[str, Any], actor: str, at: datetime) -> None:
    """The entry names the token's subject and the service's time."""
    assert entry["actor"] == actor
    assert datetime.fromisoformat(entry["at"]) == at
