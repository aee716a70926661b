"""The roles a token can carry, and how staff roles rank: plain values any module may import."""

from enum import StrEnum


class Role(StrEnum):
    agent = "agent"
    supervisor = "supervisor"
    manager = "manager"
    admin = "admin"
    service = "service"


STAFF_RANK: dict[Role, int] = {Role.agent: 1, Role.supervisor: 2, Role.manager: 3, Role.admin: 4}
