"""Bearer tokens (JWT, HS256) with roles.

Staff roles are ranked: an endpoint that requires ``agent`` accepts a supervisor, manager or
admin too. ``service`` is for other systems and is accepted only where an endpoint says so, and
then only with the scope for it in the token: ``<service>:read`` to read from a service (GET),
``<service>:write`` to change anything in it, e.g. ``customer:write complaints:write`` for a shop
that records purchases and opens complaints. A service token carries no scope unless given one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Forbidden, Unauthorized
from shared.roles import STAFF_RANK, Role
from shared.settings import CommonSettings


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and role."""

    subject: str
    role: Role
    name: str | None = None
    scopes: frozenset[str] = frozenset()

    def at_least(self, role: Role) -> bool:
        return STAFF_RANK.get(self.role, 0) >= STAFF_RANK[role]


def mint_token(
    settings: CommonSettings,
    *,
    subject: str,
    role: Role,
    ttl: timedelta = timedelta(hours=12),
    name: str | None = None,
    scopes: Iterable[str] = (),
) -> str:
    if ttl > timedelta(hours=settings.jwt_max_lifetime_hours):
        raise ValueError(f"a token may live at most {settings.jwt_max_lifetime_hours:g} hours")
    scopes = sorted(set(scopes))
    if scopes and role is not Role.service:
        raise ValueError("scopes are for service accounts; staff have their role")
    for scope in scopes:
        if scope.partition(":")[2] not in ACCESS:
            raise ValueError(f"{scope!r} is not a scope: give <service>:read or <service>:write")
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl,
    }
    if name:
        claims["name"] = name
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def decode_token(settings: CommonSettings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": ["sub", "role", "exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not valid.") from None
    if claims["exp"] - claims["iat"] > settings.jwt_max_lifetime_hours * 3600 + 60:
        raise Unauthorized(f"The token lives longer than {settings.jwt_max_lifetime_hours:g} hours.")
    try:
        role = Role(claims["role"])
    except ValueError:
        raise Unauthorized("The token names an unknown role.") from None
    scope = claims.get("scope", "")
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        name=claims.get("name"),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )


ACCESS = ("read", "write")
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_for(service: str, method: str) -> str:
    """The scope a service account needs for a request: reading or writing, in this service."""
    return f"{service}:{'read' if method.upper() in _READING else 'write'}"


_bearer = HTTPBearer(auto_error=False, description="A token from `csm token --role ROLE`.")


async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required.")
    return decode_token(request.app.state.settings.common, credentials.credentials)


def requires(minimum: Role, *, service: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting staff of ``minimum`` rank or above, and service accounts if ``service``."""
    if minimum not in STAFF_RANK:
        raise ValueError("the minimum must be a staff role; admit service accounts with service=True")

    async def check(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if principal.role is Role.service:
            if service:
                needed = scope_for(request.app.state.runtime.name, request.method)
                if needed in principal.scopes:
                    return principal
                raise Forbidden(f"This needs a service token with the scope {needed}.", scope=needed)
        elif principal.at_least(minimum):
            return principal
        raise Forbidden(
            f"This needs the role {minimum.value} or higher; the token has {principal.role.value}."
        )

    return check


CurrentUser = Annotated[Principal, Depends(authenticated)]
Agent = Annotated[Principal, Depends(requires(Role.agent))]
AgentOrService = Annotated[Principal, Depends(requires(Role.agent, service=True))]
Supervisor = Annotated[Principal, Depends(requires(Role.supervisor))]
Manager = Annotated[Principal, Depends(requires(Role.manager))]
Admin = Annotated[Principal, Depends(requires(Role.admin))]
