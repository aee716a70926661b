"""Tokens from the company's OpenID Connect provider: its signing keys, and the csm role in its claims.

The keys are the provider's JWKS, read with PyJWT's ``PyJWKSet`` (the JWK parsing, and the binding
of each key to one algorithm that stops algorithm confusion) but fetched here with httpx rather than
by ``PyJWKClient``: that client fetches with urllib, which would block the event loop, and fetches
again on every token naming an unknown key, so a flood of made-up key ids would hammer the provider.

Here the set is fetched when first needed and again after ``MAX_AGE``; a token signed by a key not
in the set (the provider rotated its keys) triggers one refetch, and such refetches happen at most
once per ``REFRESH_INTERVAL``. Concurrent requests share one fetch. If a refetch fails, the keys
already known stay in use; with none known the request gets 503 and the provider is asked again
only after the interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt

from shared.problems import Forbidden, ServiceUnavailable, Unauthorized
from shared.roles import STAFF_RANK, Role

log = logging.getLogger("csm.oidc")

# Public-key signatures only: a provider's token is never checked with a shared secret.
PROVIDER_ALGORITHMS = ("RS256", "ES256")
REFRESH_INTERVAL = 60.0
MAX_AGE = 3600.0
FETCH_TIMEOUT = 5.0
# Clocks of the provider and of csm differ a little; an expiry is honoured within this.
LEEWAY_SECONDS = 30


class NoRole(Forbidden):
    title, slug = "No csm role", "no-role"


class KeysUnavailable(ServiceUnavailable):
    title, slug = "Identity provider unreachable", "identity-provider-unreachable"


class ProviderKeys:
    """The provider's signing keys, fetched without blocking, cached, refetched rarely."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str = "",
        refresh_interval: float = REFRESH_INTERVAL,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.clock = clock
        self.keys: tuple[jwt.PyJWK, ...] = ()
        self._fresh_until = 0.0
        # The earliest moment the provider may be asked again after a miss or a failed fetch.
        self._next_refetch = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> tuple[jwt.PyJWK, ...]:
        if self.keys and self.clock() < self._fresh_until:
            return self.keys
        async with self._lock:
            now = self.clock()
            if self.keys and now < self._fresh_until:
                return self.keys
            if not self.keys and now < self._next_refetch:
                raise KeysUnavailable(self._unavailable())
            if not await self._fetch() and not self.keys:
                raise KeysUnavailable(self._unavailable())
            return self.keys

    async def refetch_for_unknown_key(self, seen: tuple[jwt.PyJWK, ...]) -> bool:
        """Fetch the set again for a token no known key verifies; whether there are other keys to try."""
        async with self._lock:
            if self.keys is not seen:
                return True  # another request fetched them meanwhile
            if self.clock() < self._next_refetch:
                return False
            self._next_refetch = self.clock() + self.refresh_interval
            return await self._fetch() and self.keys is not seen

    async def _fetch(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
                if not self.jwks_url:
                    self.jwks_url = await self._discover(client)
                response = await client.get(self.jwks_url, headers={"Accept": "application/json"})
                response.raise_for_status()
                keys = signing_keys(response.json())
        except (httpx.HTTPError, ValueError, TypeError, jwt.PyJWTError) as error:
            log.warning("the identity provider's keys were not fetched: %s", describe(error))
            if self.keys:
                self._fresh_until = self.clock() + self.refresh_interval
            self._next_refetch = self.clock() + self.refresh_interval
            return False
        self.keys = keys
        self._fresh_until = self.clock() + self.max_age
        return True

    async def _discover(self, client: httpx.AsyncClient) -> str:
        response = await client.get(
            self.issuer.rstrip("/") + "/.well-known/openid-configuration",
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        configuration = response.json()
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was asked for.
        if configuration.get("issuer") != self.issuer:
            raise ValueError(f"the discovery document names the issuer {configuration.get('issuer')!r}")
        jwks_uri = configuration.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("the discovery document names no jwks_uri")
        return jwks_uri

    def _unavailable(self) -> str:
        return (
            "The identity provider's signing keys could not be fetched, so its tokens cannot be checked; "
            f"they are fetched again within {self.refresh_interval:g} s."
        )


def signing_keys(document: Any) -> tuple[jwt.PyJWK, ...]:
    """The keys of a JWKS that may sign csm's tokens: RS256 or ES256 signature keys."""
    if not isinstance(document, dict):
        raise ValueError("the JWKS is not a JSON object")
    keys = tuple(
        key
        for key in jwt.PyJWKSet.from_dict(document)
        if key.public_key_use in (None, "sig") and key.algorithm_name in PROVIDER_ALGORITHMS
    )
    if not keys:
        raise ValueError("the JWKS has no RS256 or ES256 signing key")
    return keys


def candidates(keys: tuple[jwt.PyJWK, ...], *, kid: str | None, algorithm: str) -> list[jwt.PyJWK]:
    """The keys that could have signed a token: the one it names, or, without a name, all of its algorithm."""
    if kid is not None:
        return [key for key in keys if key.key_id == kid and key.algorithm_name == algorithm]
    return [key for key in keys if key.algorithm_name == algorithm]


async def provider_claims(
    provider: ProviderKeys, token: str, *, header: Mapping[str, Any], audience: str
) -> dict[str, Any]:
    """The claims of a token the provider signed for ``audience``, checked; else 401."""
    algorithm = header.get("alg")
    kid = header.get("kid")
    if algorithm not in PROVIDER_ALGORITHMS or not (kid is None or isinstance(kid, str)):
        raise Unauthorized("The token is not valid.")
    keys = await provider.current()
    claims = _verified(token, candidates(keys, kid=kid, algorithm=algorithm), provider.issuer, audience)
    # No known key signed it: the provider may have rotated its keys (one refetch, if not done lately).
    if claims is None and await provider.refetch_for_unknown_key(keys):
        claims = _verified(
            token, candidates(provider.keys, kid=kid, algorithm=algorithm), provider.issuer, audience
        )
    if claims is None:
        raise Unauthorized("The token is not signed by a key the identity provider publishes.")
    return claims


def _verified(token: str, keys: list[jwt.PyJWK], issuer: str, audience: str) -> dict[str, Any] | None:
    """The token's claims if one of ``keys`` signed it (and they hold); None if none did."""
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                issuer=issuer,
                audience=audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The token is not valid.") from None
        return claims
    return None


def role_in(claims: Mapping[str, Any], claim: str) -> Role | None:
    """The csm staff role a provider's claim carries: the highest, if it lists several; None if none.

    ``claim`` is a claim's name (which may itself contain dots, as namespaced claims such as
    ``https://csm.example.com/roles`` do) or else a dotted path into nested claims
    (``realm_access.roles``, ``resource_access.csm.roles``).
    """
    value: Any = claims.get(claim) if claim in claims else _walk(claims, claim.split("."))
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = [Role(name.strip().lower()) for name in names if isinstance(name, str) and _is_staff(name)]
    return max(roles, key=STAFF_RANK.__getitem__) if roles else None


def _walk(claims: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = claims
    for step in path:
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def _is_staff(name: str) -> bool:
    return name.strip().lower() in {role.value for role in STAFF_RANK}


def display_name(claims: Mapping[str, Any]) -> str | None:
    for claim in ("name", "preferred_username"):
        if isinstance(value := claims.get(claim), str) and value.strip():
            return value.strip()
    return None


def describe(error: Exception) -> str:
    """An error, said without the URL's query or anything the provider sent back."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"{error.request.url.copy_with(query=None)} answered {error.response.status_code}"
    if isinstance(error, httpx.RequestError):
        return f"{type(error).__name__} reaching {error.request.url.copy_with(query=None)}"
    return f"{type(error).__name__}: {error}"
