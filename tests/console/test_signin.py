"""Signing in to the console: development sign-in off production, single sign-on against a real
OpenID Connect provider (PKCE), the session cookie, CSRF, and no page without a session."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from oidc_provider_mock import run_server_in_thread
from pydantic import SecretStr

from services.console.settings import ConsoleSettings
from shared.broker import free_port
from shared.settings import CommonSettings
from tests.console.helpers import CONSOLE, console, form_token, settings_for_tests
from tests.harness import api_routes

# Reachable without a session: signing in and out, the language, health and the assets.
PUBLIC = {
    "/sign-in",
    "/sign-in/development",
    "/sign-in/oidc",
    "/sign-in/callback",
    "/sign-out",
    "/language",
    "/healthz",
    "/readyz",
}


class Recording(httpx.AsyncBaseTransport):
    """Stands in for the four services where a test must prove that none was called."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        return httpx.Response(500)


async def test_development_sign_in_gives_a_session_with_the_chosen_role_and_an_http_only_cookie() -> None:
    async with console(settings_for_tests()) as (_app, client):
        page = await client.get("/sign-in")
        assert 'action="/sign-in/development"' in page.text
        signed = await client.post(
            "/sign-in/development",
            data={"csrf": form_token(page), "role": "supervisor", "subject": "li.na", "name": "Li Na"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/work"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
        who = await client.get("/sign-in")
        assert 'data-testid="subject">li.na<' in who.text
        assert 'data-testid="role">supervisor<' in who.text.replace("主管", "supervisor")


async def test_a_form_without_the_session_token_is_refused() -> None:
    async with console(settings_for_tests()) as (_app, client):
        await client.get("/sign-in")
        refused = await client.post(
            "/sign-in/development", data={"csrf": "forged", "role": "admin", "subject": "mallory"}
        )
        assert refused.status_code == 403
        assert 'data-testid="subject"' not in (await client.get("/sign-in")).text


async def test_production_refuses_the_development_sign_in() -> None:
    production = ConsoleSettings(
        common=CommonSettings(
            env="production",
            jwt_secret=SecretStr("p" * 16 + "roduction-secret-1234567"),
            kafka_allow_plaintext=True,
        ),
        session_secret=SecretStr("s" * 8 + "ession-secret-0123456789abcdef"),
        oidc_issuer="https://id.example.com",
        oidc_client_id="csm-console",
    )
    async with console(production) as (_app, client):
        page = await client.get("/sign-in")
        assert "/sign-in/development" not in page.text
        assert "/sign-in/oidc" in page.text
        refused = await client.post(
            "/sign-in/development", data={"csrf": form_token(page), "role": "admin", "subject": "mallory"}
        )
        assert refused.status_code == 403
        assert 'data-testid="subject"' not in (await client.get("/sign-in")).text


def test_production_needs_a_session_secret_and_single_sign_on() -> None:
    common = CommonSettings(
        env="production",
        jwt_secret=SecretStr("p" * 16 + "roduction-secret-1234567"),
        kafka_allow_plaintext=True,
    )
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        ConsoleSettings(common=common, oidc_issuer="https://id.example.com", oidc_client_id="csm")
    with pytest.raises(ValueError, match="CSM_OIDC_ISSUER"):
        ConsoleSettings(common=common, session_secret=SecretStr("s" * 8 + "ession-secret-0123456789abcdef"))


async def test_every_route_but_signing_in_and_health_needs_a_session() -> None:
    services = Recording()
    async with console(settings_for_tests(), services=services) as (app, client):
        guarded = [route for route in api_routes(app.routes) if route.path not in PUBLIC]
        assert {route.path for route in guarded} >= {
            "/work",
            "/customers/{customer_id}",
            "/complaints/{complaint_id}",
            "/approvals",
        }
        for route in guarded:
            path = re.sub(r"\{[a-z_]+_id\}", lambda _: str(uuid.uuid4()), route.path).replace("{name}", "sla")
            path = path.replace("{key}", "first_purchase_care").replace("{kind}", "complaints")
            assert "{" not in path, path
            for method in route.methods or ():
                answer = await client.request(
                    method, path, data={"csrf": "x", "outcome": "done", "to": "closed"}
                )
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/sign-in"), (method, path)
        assert services.calls == []


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID Connect provider on a free loopback port, for the module."""
    with run_server_in_thread(port=free_port()) as server:
        yield f"http://localhost:{server.server_port}"


async def _through_provider(client: httpx.AsyncClient, provider: str, subject: str) -> httpx.Response:
    """Start at the console, sign in at the provider as ``subject``, come back to the console's callback."""
    start = await client.get("/sign-in/oidc", params={"next": "/customers"})
    assert start.status_code in (302, 303), start.text
    authorize = start.headers["location"]
    sent = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider)
    assert sent["code_challenge_method"] == ["S256"] and sent["code_challenge"], sent
    async with httpx.AsyncClient() as browser:
        granted = await browser.post(authorize, data={"sub": subject})
    assert granted.status_code in (302, 303), granted.text
    back = urlsplit(granted.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == CONSOLE
    return await client.get(f"{back.path}?{back.query}")


async def test_single_sign_on_gives_a_session_with_the_providers_subject_and_role(provider: str) -> None:
    async with httpx.AsyncClient() as admin:
        claims = {"csm_role": "supervisor", "name": "Wang Fang", "email": "wang.fang@example.com"}
        answer = await admin.put(
            f"{provider}/users/wang.fang",
            content=json.dumps(claims),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 204, answer.text
    settings = settings_for_tests(
        oidc_issuer=provider, oidc_client_id="csm-console", oidc_client_secret=SecretStr("console-secret")
    )
    async with console(settings) as (_app, client):
        landed = await _through_provider(client, provider, "wang.fang")
        assert landed.status_code == 303 and landed.headers["location"] == "/customers", landed.text
        who = (await client.get("/sign-in")).text
        assert 'data-testid="subject">wang.fang<' in who
        assert "Wang Fang" in who
        assert 'data-testid="role">主管<' in who or 'data-testid="role">supervisor<' in who

        page = await client.get("/sign-in")
        out = await client.post("/sign-out", data={"csrf": form_token(page)})
        assert out.status_code == 303
        ending = out.headers["location"]
        assert ending.startswith(f"{provider}/oauth2/end_session"), ending
        assert parse_qs(urlsplit(ending).query)["id_token_hint"]
        assert (await client.get("/work")).headers["location"].startswith("/sign-in")


async def test_a_provider_account_without_a_csm_role_is_not_signed_in(provider: str) -> None:
    settings = settings_for_tests(
        oidc_issuer=provider, oidc_client_id="csm-console", oidc_client_secret=SecretStr("console-secret")
    )
    async with console(settings) as (_app, client):
        landed = await _through_provider(client, provider, "no.role@example.com")
        assert landed.status_code == 303 and landed.headers["location"] == "/sign-in?failed=no_role"
        assert (await client.get("/work")).headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("sent", ["access_token", "id_token"])
async def test_the_console_calls_the_services_with_the_providers_token(provider: str, sent: str) -> None:
    services = Recording()
    settings = settings_for_tests(
        oidc_issuer=provider,
        oidc_client_id="csm-console",
        oidc_client_secret=SecretStr("console-secret"),
        oidc_token_for_services=sent,
    )
    async with httpx.AsyncClient() as admin:
        await admin.put(
            f"{provider}/users/zhou.min",
            content=json.dumps({"csm_role": "agent"}),
            headers={"content-type": "application/json"},
        )
    async with console(settings, services=services) as (_app, client):
        await _through_provider(client, provider, "zhou.min")
        await client.get("/work")
    [call, *_] = services.calls
    scheme, _, bearer = call.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    if sent == "id_token":
        claims = jwt.decode(bearer, options={"verify_signature": False})
        assert (
            claims["sub"] == "zhou.min"
            and claims["aud"] in ("csm-console", ["csm-console"])
            and claims["iss"] == provider
        )
    else:
        # This provider's access tokens are opaque: the one it issued, not the ID token.
        assert bearer.count(".") != 2 and len(bearer) >= 20
