"""Rate limits per client address and per token, and on failed authentication above all.

A request over a limit gets 429 with ``Retry-After`` and never reaches the application. The
limits (``CSM_RATE_LIMIT_*``, in the ``limits`` library's notation such as ``"20/minute"``) are
counted in memory by default, per process; with ``CSM_RATE_LIMIT_STORAGE=redis://…`` every
replica of every service counts in one place. Failed authentication (an answer of 401) is
counted per address, and an address that used up its allowance is refused before its token is
even looked at, so guessing tokens is slow. Health, metrics and the API documents are not limited.
If the counting store fails, requests are let through and the failure is logged: an outage of
Redis must not become an outage of csm.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.observability import StatusNoted
from shared.problems import problem_response
from shared.settings import CommonSettings

log = logging.getLogger("csm.ratelimit")

_UNLIMITED_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/asyncapi.json",
)


def storage_for(uri: str) -> Storage:
    if uri.startswith("memory://"):
        return MemoryStorage()
    return RedisStorage(uri, implementation="redispy", key_prefix="csm-limits")


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, settings: CommonSettings, service: str) -> None:
        self.app = app
        self.service = service
        self.enabled = settings.rate_limits_enabled
        self.limiter = FixedWindowRateLimiter(storage_for(settings.rate_limit_storage))
        self.per_address = parse(settings.rate_limit_per_address)
        self.per_token = parse(settings.rate_limit_per_token)
        self.failed_auth = parse(settings.rate_limit_failed_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"].startswith(_UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        token = _bearer(scope)
        try:
            if not await self.limiter.test(self.failed_auth, "auth-failures", address):
                await self._refuse(scope, receive, send, self.failed_auth, "auth-failures", address)
                return
            if not await self.limiter.hit(self.per_address, "address", self.service, address):
                await self._refuse(scope, receive, send, self.per_address, "address", self.service, address)
                return
            if token and not await self.limiter.hit(self.per_token, "token", self.service, token):
                await self._refuse(scope, receive, send, self.per_token, "token", self.service, token)
                return
        except Exception as error:  # the counting store is down: let the request through
            log.warning("rate limits not counted (%s)", type(error).__name__)
        noted = StatusNoted(send, default=0)
        await self.app(scope, receive, noted)
        if noted.status == 401:
            try:
                await self.limiter.hit(self.failed_auth, "auth-failures", address)
            except Exception as error:
                log.warning("a failed authentication not counted (%s)", type(error).__name__)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, item: RateLimitItem, *identifiers: str
    ) -> None:
        reset_at, _remaining = await self.limiter.get_window_stats(item, *identifiers)
        wait = max(1, math.ceil(reset_at - time.time()))
        response = problem_response(
            429,
            "Too many requests",
            slug="rate-limited",
            detail=f"At most {item} per {identifiers[0].replace('-', ' ')}; try again in {wait} s.",
            instance=scope["path"],
            headers={"Retry-After": str(wait)},
        )
        await response(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    """A digest of the request's bearer token (the token itself is never kept)."""
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return hashlib.sha256(value[7:].strip()).hexdigest()[:32]
    return None
