"""A verified token is remembered, but never past its expiry, never when it failed, and within a bound."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from types import SimpleNamespace

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shared import auth as auth_module
from shared.auth import Agent, Principal, TokenVerifier, VerifiedTokens, mint_token
from shared.problems import install_problem_handlers
from shared.roles import Role
from shared.settings import CommonSettings
from tests.harness import problem


def whoami(settings: CommonSettings) -> tuple[FastAPI, TokenVerifier]:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = SimpleNamespace(common=settings)
    verifier = app.state.token_verifier = TokenVerifier(settings)

    @app.get("/me")
    async def me(caller: Agent) -> dict[str, str]:
        return {"subject": caller.subject, "role": caller.role.value}

    return app, verifier


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_verified_once_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = CommonSettings(env="test")
    app, verifier = whoami(settings)
    checks = 0
    check = auth_module._local_token

    def counted(settings: CommonSettings, token: str) -> tuple[Principal, float]:
        nonlocal checks
        checks += 1
        return check(settings, token)

    monkeypatch.setattr(auth_module, "_local_token", counted)
    token = mint_token(settings, subject="amy", role=Role.agent)
    async with client_of(app) as desk:
        for _ in range(3):
            answer = await desk.get("/me", headers=bearer(token))
            assert answer.json() == {"subject": "amy", "role": "agent"}
    assert checks == 1
    # Kept under a digest: the token itself is not held once its requests are answered.
    assert len(verifier.verified) == 1
    assert all(token.encode() not in key for key in verifier.verified._entries)


async def test_an_expired_token_is_refused_even_when_it_was_remembered_while_valid() -> None:
    settings = CommonSettings(env="test")
    app, verifier = whoami(settings)
    token = mint_token(settings, subject="amy", role=Role.agent, ttl=timedelta(seconds=1))
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with client_of(app) as desk:
        assert (await desk.get("/me", headers=bearer(token))).status_code == 200
        assert len(verifier.verified) == 1
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
        answer = await desk.get("/me", headers=bearer(token))
    assert problem(answer, 401) == "unauthorized"
    assert answer.json()["detail"] == "The token has expired."
    assert len(verifier.verified) == 0


async def test_a_refused_token_is_not_remembered() -> None:
    settings = CommonSettings(env="test")
    app, verifier = whoami(settings)
    forged = jwt.encode(
        jwt.decode(mint_token(settings, subject="amy", role=Role.admin), options={"verify_signature": False}),
        "another-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    async with client_of(app) as desk:
        for _ in range(2):
            assert problem(await desk.get("/me", headers=bearer(forged)), 401) == "unauthorized"
        # A valid token of too low a role is remembered (it is valid), yet refused on every request.
        service = mint_token(settings, subject="shop", role=Role.service)
        for _ in range(2):
            assert problem(await desk.get("/me", headers=bearer(service)), 403) == "forbidden"
    assert len(verifier.verified) == 1


def test_an_entry_ends_at_its_tokens_expiry_and_the_oldest_goes_first() -> None:
    now = 1000.0
    verified = VerifiedTokens(capacity=2, clock=lambda: now)
    amy, bob, eve = (Principal(subject=name, role=Role.agent) for name in ("amy", "bob", "eve"))
    verified.put(b"a", amy, expires=1010.0)
    verified.put(b"b", bob, expires=1010.0)
    assert verified.get(b"a") == (amy, None)
    verified.put(b"e", eve, expires=1010.0)
    assert verified.get(b"a") is None, "past its capacity the entry made first goes"
    assert verified.get(b"b") == (bob, None) and verified.get(b"e") == (eve, None)
    now = 1009.999
    assert verified.get(b"b") == (bob, None)
    now = 1010.0  # PyJWT refuses a token at its exp, not after it
    assert verified.get(b"b") is None
    assert len(verified) == 1
