"""Bearer tokens (JWT) with roles: local ones (HS256), and the company's OpenID Connect provider's.

Local tokens are minted by ``csm token`` (and the console's development sign-in) with
``CSM_JWT_SECRET``; in production that secret must be a real one (``shared.settings``), so tokens
signed with the development secret are refused there. With ``CSM_OIDC_ISSUER`` set, tokens the
provider signed (RS256 or ES256, see ``shared.oidc``) are accepted too; the csm role is read from
``CSM_OIDC_ROLE_CLAIM``. Which way a token is checked follows from its algorithm, and each way
admits only its own: a provider's public key never checks an HS256 signature.

Staff roles are ranked: an endpoint that requires ``agent`` accepts a supervisor, manager or
admin too. ``service`` is for other systems and is accepted only where an endpoint says so, and
then only with the scope for it in the token: ``<service>:read`` to read from a service (GET),
``<service>:write`` to change anything in it, e.g. ``customer:write complaints:write`` for a shop
that records purchases and opens complaints. A service token carries no scope unless given one.

A token once verified is remembered (``VerifiedTokens``) so that the next request with it skips the
signature and claim checks: only the answer of a token that passed every check is kept, under a
digest of its bytes, never longer than the token lives, and a provider's token only while the key
set it was checked against is still the current one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.oidc import (
    LEEWAY_SECONDS,
    PROVIDER_ALGORITHMS,
    NoRole,
    ProviderKeys,
    display_name,
    provider_claims,
    role_in,
)
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
    """The caller of a local token (HS256, signed with ``CSM_JWT_SECRET``); else 401."""
    return _local_token(settings, token)[0]


def _local_token(settings: CommonSettings, token: str) -> tuple[Principal, float]:
    """The caller of a local token and the moment (Unix time) it expires; else 401."""
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
    principal = Principal(
        subject=str(claims["sub"]),
        role=role,
        name=claims.get("name"),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )
    return principal, float(claims["exp"])


ACCESS = ("read", "write")
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_for(service: str, method: str) -> str:
    """The scope a service account needs for a request: reading or writing, in this service."""
    return f"{service}:{'read' if method.upper() in _READING else 'write'}"


class VerifiedTokens:
    """Tokens that passed every check, by a digest of their bytes, each until it expires.

    Bounded: past ``capacity`` the entry made longest ago goes. Only successes are kept, so a flood
    of made-up tokens neither fills it nor is answered from it. An entry is never used at or past its
    token's expiry (the same moment PyJWT refuses it), and then it is dropped, so the full check runs
    again and answers as it always did ("The token has expired."). ``keys`` is the provider's key set
    a provider's token was checked against; the entry counts only while that set is still current.
    """

    def __init__(self, capacity: int = 4096, *, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self.clock = clock
        self._entries: dict[bytes, tuple[Principal, float, object]] = {}

    @staticmethod
    def key(token: str) -> bytes:
        # A digest, so that the tokens themselves are not kept in memory longer than a request.
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> tuple[Principal, object] | None:
        """The caller a token named and the key set it was checked against (None: a local token)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires, checked_with = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        return principal, checked_with

    def put(self, key: bytes, principal: Principal, *, expires: float, keys: object = None) -> None:
        if key not in self._entries and len(self._entries) >= self.capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (principal, expires, keys)

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    """Checks bearer tokens of both kinds; holds the provider's keys, so one lives as long as its app."""

    def __init__(
        self,
        settings: CommonSettings,
        *,
        provider: ProviderKeys | None = None,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider
        if provider is None and settings.oidc_issuer:
            self.provider = ProviderKeys(issuer=settings.oidc_issuer, jwks_url=settings.oidc_jwks_url)
        self.verified = verified if verified is not None else VerifiedTokens()

    async def principal(self, token: str) -> Principal:
        key = self.verified.key(token)
        known = self.verified.get(key)
        if known is not None and known[1] is None:
            return known[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("The token is not valid.") from None
        if header.get("alg") == "HS256":
            principal, expires = _local_token(self.settings, token)
            self.verified.put(key, principal, expires=expires)
            return principal
        if header.get("alg") not in PROVIDER_ALGORITHMS:
            raise Unauthorized("The token is not valid.")
        if self.provider is None:
            raise Unauthorized(
                "Tokens from an identity provider are not accepted: CSM_OIDC_ISSUER is not set."
            )
        # The provider's current keys (fetched again when stale): a token checked against an earlier set
        # is checked again, so a key the provider withdrew stops counting as soon as it would have.
        if known is not None and known[1] is await self.provider.current():
            return known[0]
        claims = await provider_claims(
            self.provider, token, header=header, audience=self.settings.oidc_audience
        )
        role = role_in(claims, self.settings.oidc_role_claim)
        if role is None:
            raise NoRole(
                f"The identity provider's token carries no csm role in its claim "
                f"{self.settings.oidc_role_claim!r}: it needs one of agent, supervisor, manager or admin, "
                "given to the person at the identity provider.",
                claim=self.settings.oidc_role_claim,
            )
        principal = Principal(subject=str(claims["sub"]), role=role, name=display_name(claims))
        # PyJWT accepts a provider's token until ``exp`` plus the leeway; the entry lives no longer.
        self.verified.put(
            key, principal, expires=float(claims["exp"]) + LEEWAY_SECONDS, keys=self.provider.keys
        )
        return principal


def token_verifier(app: Any) -> TokenVerifier:
    """The app's verifier, made on first use from its settings (an app built by any factory has one)."""
    verifier: TokenVerifier | None = getattr(app.state, "token_verifier", None)
    if verifier is None:
        verifier = app.state.token_verifier = TokenVerifier(app.state.settings.common)
    return verifier


_bearer = HTTPBearer(
    auto_error=False,
    description="A token from `csm token --role ROLE`, or from the identity provider (CSM_OIDC_ISSUER).",
)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticated(request: Request, credentials: Credentials) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required.")
    return await token_verifier(request.app).principal(credentials.credentials)


def requires(minimum: Role, *, service: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting staff of ``minimum`` rank or above, and service accounts if ``service``."""
    if minimum not in STAFF_RANK:
        raise ValueError("the minimum must be a staff role; admit service accounts with service=True")

    # It checks the token itself rather than depending on ``authenticated``: FastAPI solves each
    # dependency of each request afresh, and a node less is some 10 µs less on every request.
    async def check(request: Request, credentials: Credentials) -> Principal:
        principal = await authenticated(request, credentials)
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
