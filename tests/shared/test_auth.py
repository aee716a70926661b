"""Bearer tokens and roles, through a real service's HTTP API."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from shared.auth import Manager, Principal, decode_token, mint_token
from shared.problems import install_problem_handlers
from shared.roles import Role
from shared.settings import DEVELOPMENT_JWT_SECRET, CommonSettings
from tests.harness import Stack, auth

CUSTOMER = "/customers/00000000-0000-4000-8000-000000000001"


@pytest.fixture
async def customer_service(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    return body  # type: ignore[no-any-return]


async def test_no_token_is_401_with_a_bearer_challenge(customer_service: Stack) -> None:
    response = await customer_service["customer"].client.get(CUSTOMER)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode(
            {"sub": "x", "role": "admin", "iss": "csm", "exp": 4102444800},
            "another-secret-that-is-long-enough-for-hs256",
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "x", "role": "overlord", "iss": "csm", "exp": 4102444800},
            DEVELOPMENT_JWT_SECRET,
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "x", "role": "admin", "iss": "someone-else", "exp": 4102444800},
            DEVELOPMENT_JWT_SECRET,
            algorithm="HS256",
        ),
        jwt.encode({"sub": "x", "role": "admin", "iss": "csm"}, DEVELOPMENT_JWT_SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "x", "role": "admin", "iss": "csm", "iat": 1796000000, "exp": 4102444800},
            DEVELOPMENT_JWT_SECRET,
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "x", "role": "admin", "iss": "csm", "aud": "erp", "iat": 1796000000, "exp": 1796003600},
            DEVELOPMENT_JWT_SECRET,
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "x", "role": "admin", "iss": "csm", "aud": "csm", "iat": 1796000000, "exp": 4902444800},
            DEVELOPMENT_JWT_SECRET,
            algorithm="HS256",
        ),
    ],
    ids=[
        "garbage",
        "wrong-secret",
        "unknown-role",
        "wrong-issuer",
        "no-expiry",
        "no-audience",
        "wrong-audience",
        "a-century",
    ],
)
async def test_a_bad_token_is_401(customer_service: Stack, token: str) -> None:
    response = await customer_service["customer"].client.get(
        CUSTOMER, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 401)


async def test_an_expired_token_is_401_and_says_so(customer_service: Stack) -> None:
    token = mint_token(customer_service.common, subject="x", role=Role.admin, ttl=timedelta(seconds=-1))
    response = await customer_service["customer"].client.get(
        CUSTOMER, headers={"Authorization": f"Bearer {token}"}
    )
    assert "expired" in str(assert_problem(response, 401)["detail"])


async def test_every_role_that_may_read_a_customer_gets_past_auth(customer_service: Stack) -> None:
    for role in Role:
        response = await customer_service["customer"].client.get(CUSTOMER, headers=auth(role))
        assert response.status_code == 404, (role, response.text)


def test_staff_roles_are_ranked_and_service_is_apart() -> None:
    manager = Principal("m", Role.manager)
    assert (
        manager.at_least(Role.agent) and manager.at_least(Role.manager) and not manager.at_least(Role.admin)
    )
    assert not Principal("s", Role.service).at_least(Role.agent)


def manager_only_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = SimpleNamespace(common=CommonSettings(env="test"))

    @app.get("/policy")
    async def policy(_user: Manager) -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def test_a_role_without_the_right_is_403() -> None:
    app = manager_only_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for role, status in [
            (Role.agent, 403),
            (Role.supervisor, 403),
            (Role.service, 403),
            (Role.manager, 200),
            (Role.admin, 200),
        ]:
            response = await client.get("/policy", headers=auth(role))
            assert response.status_code == status, role
        refused = await client.get("/policy", headers=auth(Role.agent))
        assert (
            "manager" in refused.json()["detail"]
            and refused.headers["content-type"] == "application/problem+json"
        )


def test_production_refuses_the_development_secret_short_ones_and_guessable_ones_without_echoing_them() -> (
    None
):
    with pytest.raises(ValidationError, match="development secret"):
        CommonSettings(env="production")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        CommonSettings(env="production", jwt_secret=SecretStr("short"))
    with pytest.raises(ValidationError, match="too easy to guess") as guessable:
        CommonSettings(env="production", jwt_secret="abababababababababababababababab-x")
    assert "abab" not in str(guessable.value), "the refused secret is not echoed"
    # (Kafka security has its own production rule, tests/shared/test_kafka_security.py.)
    CommonSettings(env="production", jwt_secret=SecretStr(secrets.token_hex(32)), kafka_allow_plaintext=True)


def test_a_token_may_not_be_minted_for_longer_than_the_maximum() -> None:
    with pytest.raises(ValueError, match="at most 24 hours"):
        mint_token(CommonSettings(), subject="x", role=Role.admin, ttl=timedelta(days=36500))
    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "--role", "admin", "--hours", "876000"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "at most 24 hours" in refused.stderr


def test_csm_token_mints_a_token_for_the_role_asked() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "--role", "supervisor", "--subject", "amy"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    principal = decode_token(CommonSettings(), printed)
    assert (principal.subject, principal.role) == ("amy", Role.supervisor)


async def test_a_service_account_may_do_only_what_its_scopes_say(customer_service: Stack) -> None:
    client = customer_service["customer"].client
    body = {"name": "李娜", "email": "li.na@example.com"}

    nothing = auth(Role.service, "shop", scopes=())
    assert assert_problem(await client.get(CUSTOMER, headers=nothing), 403)["scope"] == "customer:read"
    assert assert_problem(await client.post("/customers", json=body, headers=nothing), 403)["scope"] == (
        "customer:write"
    )

    writer = auth(Role.service, "shop", scopes=["customer:write"])
    created = await client.post("/customers", json=body, headers=writer)
    assert created.status_code == 201, created.text
    path = f"/customers/{created.json()['id']}"
    assert (await client.get(path, headers=writer)).status_code == 403, "writing does not let it read"

    other_service = auth(Role.service, "shop", scopes=["complaints:read", "complaints:write"])
    assert (await client.get(path, headers=other_service)).status_code == 403
    reader = auth(Role.service, "crm", scopes=["customer:read"])
    assert (await client.get(path, headers=reader)).status_code == 200
    assert (await client.post("/customers", json=body, headers=reader)).status_code == 403


def test_only_service_accounts_carry_scopes_and_only_real_ones() -> None:
    settings = CommonSettings(env="test")
    token = mint_token(
        settings, subject="shop", role=Role.service, scopes=["customer:write", "customer:write"]
    )
    assert decode_token(settings, token).scopes == {"customer:write"}
    assert decode_token(settings, mint_token(settings, subject="s", role=Role.service)).scopes == set()
    with pytest.raises(ValueError, match="service accounts"):
        mint_token(settings, subject="a", role=Role.agent, scopes=["customer:read"])
    with pytest.raises(ValueError, match="not a scope"):
        mint_token(settings, subject="s", role=Role.service, scopes=["customer:everything"])
