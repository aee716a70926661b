"""Single sign-on: tokens from a real OpenID Connect provider (oidc-provider-mock) on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from shared.auth import Agent, TokenVerifier, mint_token
from shared.oidc import ProviderKeys, role_in
from shared.problems import install_problem_handlers
from shared.roles import Role
from shared.settings import DEVELOPMENT_JWT_SECRET, CommonSettings
from tests.harness import Stack, auth, problem
from tests.shared.oidc_provider import KeySet, Provider

# The provider's own use of authlib calls what authlib has deprecated; that is not csm's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")

AGENT = {"csm_role": "agent", "name": "Amy Li"}


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as running:
        yield running


def sso(issuer: str, **overrides: Any) -> CommonSettings:
    return CommonSettings(env="test", oidc_issuer=issuer, oidc_audience="csm", **overrides)


def whoami(settings: CommonSettings, verifier: TokenVerifier | None = None) -> FastAPI:
    """An app with one agent's endpoint that says who the caller is."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = SimpleNamespace(common=settings)
    if verifier is not None:
        app.state.token_verifier = verifier

    @app.get("/me")
    async def me(caller: Agent) -> dict[str, str | None]:
        return {"subject": caller.subject, "role": caller.role.value, "name": caller.name}

    return app


@pytest.fixture
async def desk(provider: Provider) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(whoami(sso(provider.issuer))) as client:
        yield client


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_for(issuer: str, **more: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "iss": issuer,
        "aud": "csm",
        "sub": "mallory",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "csm_role": "admin",
        **more,
    }


def unsigned(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A token put together by hand, as an attacker would; ``sign`` makes its signature, if any."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, default=lambda moment: int(moment.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_a_provider_token_with_a_role_works_on_all_four_services(
    stack: Stack, provider: Provider
) -> None:
    common = stack.common.model_copy(update={"oidc_issuer": provider.issuer, "oidc_audience": "csm"})
    for name in ("customer", "segmentation", "complaints", "notify"):
        await stack.start(name, run_workers=False, common=common)
    token = bearer(await provider.token("amy", AGENT))
    reads = {
        "customer": (f"/customers/{uuid.uuid4()}", 404),
        "segmentation": ("/policy", 200),
        "complaints": ("/complaints", 200),
        "notify": ("/policy", 200),
    }
    for name, (path, status) in reads.items():
        answer = await stack[name].client.get(path, headers=token)
        assert answer.status_code == status, (name, answer.text)
        # The local development tokens are still accepted beside the provider's.
        assert (await stack[name].client.get(path, headers=auth(Role.agent))).status_code == status, name
        assert (await stack[name].client.get(path)).status_code == 401, name


async def test_the_subject_name_and_role_of_a_provider_token_become_the_caller(
    provider: Provider, desk: httpx.AsyncClient
) -> None:
    named = await desk.get("/me", headers=bearer(await provider.token("amy", AGENT)))
    assert named.json() == {"subject": "amy", "role": "agent", "name": "Amy Li"}, named.text
    user_name_only = await provider.token("u-17", {"csm_role": "supervisor", "preferred_username": "bo.wang"})
    assert (await desk.get("/me", headers=bearer(user_name_only))).json() == {
        "subject": "u-17",
        "role": "supervisor",
        "name": "bo.wang",
    }


async def test_the_role_claim_may_be_a_list_or_a_path_into_nested_claims(provider: Provider) -> None:
    keycloak = sso(provider.issuer, oidc_role_claim="realm_access.roles")
    async with client_of(whoami(keycloak)) as client:
        token = await provider.token(
            "kc", {"realm_access": {"roles": ["offline_access", "agent", "manager", "uma_authorization"]}}
        )
        assert (await client.get("/me", headers=bearer(token))).json()["role"] == "manager"
    namespaced = sso(provider.issuer, oidc_role_claim="https://csm.example.com/roles")
    async with client_of(whoami(namespaced)) as client:
        token = await provider.token("a0", {"https://csm.example.com/roles": ["Supervisor"]})
        assert (await client.get("/me", headers=bearer(token))).json()["role"] == "supervisor"


@pytest.mark.parametrize(
    ("value", "role"),
    [
        ("agent", Role.agent),
        (" Manager ", Role.manager),
        (["agent", "admin", "supervisor"], Role.admin),
        (["offline_access", "supervisor"], Role.supervisor),
        ("service", None),
        (["service", "overlord"], None),
        ([], None),
        (42, None),
        ({"roles": ["admin"]}, None),
        (None, None),
    ],
)
def test_the_highest_staff_role_in_the_claim_counts(value: object, role: Role | None) -> None:
    assert role_in({"csm_role": value}, "csm_role") is role
    assert role_in({"realm_access": {"roles": value}}, "realm_access.roles") is role
    assert role_in({"realm_access": "agent"}, "realm_access.roles") is None


async def test_a_provider_token_without_a_csm_role_is_403_saying_which_claim(
    provider: Provider, desk: httpx.AsyncClient
) -> None:
    for claims in ({}, {"csm_role": "service"}, {"csm_role": ["janitor"]}, {"groups": ["agent"]}):
        token = await provider.token("nobody", claims)
        answer = await desk.get("/me", headers=bearer(token))
        assert problem(answer, 403) == "no-role", claims
        assert answer.json()["claim"] == "csm_role" and "csm_role" in answer.json()["detail"]


async def test_a_token_for_another_audience_or_from_another_issuer_is_401(
    provider: Provider, desk: httpx.AsyncClient
) -> None:
    assert (await desk.get("/me", headers=bearer(await provider.token("amy", AGENT)))).status_code == 200
    other_audience = await provider.token("amy", AGENT, audience="erp")
    assert problem(await desk.get("/me", headers=bearer(other_audience)), 401) == "unauthorized"
    # The same provider and key, but under another name: its tokens name another issuer.
    other_issuer = await provider.token("amy", AGENT, host="localhost")
    assert jwt.decode(other_issuer, options={"verify_signature": False})["iss"] != provider.issuer
    assert problem(await desk.get("/me", headers=bearer(other_issuer)), 401) == "unauthorized"


async def test_an_expired_provider_token_is_401_and_says_so() -> None:
    with Provider(token_lifetime=timedelta(minutes=-10)) as stale:
        async with client_of(whoami(sso(stale.issuer))) as client:
            answer = await client.get("/me", headers=bearer(await stale.token("amy", AGENT)))
    problem(answer, 401)
    assert "expired" in answer.json()["detail"]


async def test_forged_tokens_are_401(provider: Provider, desk: httpx.AsyncClient) -> None:
    published = (await provider.jwks())["keys"][0]
    public_pem = jwt.PyJWK(published).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = {
        "unknown key": jwt.encode(
            claims_for(provider.issuer), stranger, algorithm="RS256", headers={"kid": "not-published"}
        ),
        "unknown key, no kid": jwt.encode(claims_for(provider.issuer), stranger, algorithm="RS256"),
        "the published kid, another key": jwt.encode(
            claims_for(provider.issuer), stranger, algorithm="RS256", headers={"kid": published["kid"]}
        ),
        # Algorithm confusion: the provider's public key used as an HMAC secret.
        "HS256 with the public key": unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": published["kid"]},
            claims_for(provider.issuer),
            lambda signing_input: hmac.new(public_pem, signing_input, hashlib.sha256).digest(),
        ),
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims_for(provider.issuer)),
        "alg None": unsigned(
            {"alg": "None", "typ": "JWT", "kid": published["kid"]}, claims_for(provider.issuer)
        ),
        "RS384": jwt.encode(claims_for(provider.issuer), stranger, algorithm="RS384"),
        # A key the token brings along is never trusted: keys come from the provider's set only.
        "its own key in the header": jwt.encode(
            claims_for(provider.issuer),
            stranger,
            algorithm="RS256",
            headers={"jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(stranger.public_key()))},
        ),
    }
    for name, token in forged.items():
        answer = await desk.get("/me", headers=bearer(token))
        assert problem(answer, 401) == "unauthorized", (name, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer", name


async def test_a_new_signing_key_is_picked_up_and_the_retired_one_refused(
    provider: Provider, desk: httpx.AsyncClient
) -> None:
    before = await provider.token("amy", AGENT)
    assert (await desk.get("/me", headers=bearer(before))).status_code == 200
    old_kid = (await provider.jwks())["keys"][0]["kid"]

    provider.rotate()
    new_kid = (await provider.jwks())["keys"][0]["kid"]
    assert new_kid != old_kid
    after = await provider.token("amy", AGENT)
    assert (await desk.get("/me", headers=bearer(after))).status_code == 200, "the new key was fetched"
    assert (await desk.get("/me", headers=bearer(before))).status_code == 401, "the retired key is gone"


async def test_a_flood_of_unknown_keys_asks_the_provider_once(provider: Provider) -> None:
    async with client_of(whoami(sso(provider.issuer))) as desk:
        assert (await desk.get("/me", headers=bearer(await provider.token("amy", AGENT)))).status_code == 200
        assert provider.jwks_fetches == 1
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for _ in range(25):
            token = jwt.encode(
                claims_for(provider.issuer),
                stranger,
                algorithm="RS256",
                headers={"kid": secrets.token_hex(8)},
            )
            assert (await desk.get("/me", headers=bearer(token))).status_code == 401
        assert provider.jwks_fetches == 2, "one refetch for the first unknown key, none for the rest"
        assert (await desk.get("/me", headers=bearer(await provider.token("bo", AGENT)))).status_code == 200


async def test_requests_arriving_together_share_one_fetch_of_the_keys(provider: Provider) -> None:
    tokens = [bearer(await provider.token(f"agent-{n}", AGENT)) for n in range(3)]
    async with client_of(whoami(sso(provider.issuer))) as desk:
        answers = await asyncio.gather(*(desk.get("/me", headers=tokens[n % 3]) for n in range(20)))
    assert {answer.status_code for answer in answers} == {200}
    assert provider.jwks_fetches == 1


async def test_a_discovery_document_for_another_issuer_is_not_believed(provider: Provider) -> None:
    # The provider's document names its issuer without the final slash configured here.
    async with client_of(whoami(sso(provider.issuer + "/"))) as desk:
        answer = await desk.get("/me", headers=bearer(await provider.token("amy", AGENT)))
    assert problem(answer, 503) == "identity-provider-unreachable"
    assert provider.jwks_fetches == 0


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_unreachable_provider_is_503_and_known_keys_outlive_it() -> None:
    clock = Ticking()
    provider = Provider()
    with provider:
        settings = sso(provider.issuer)
        keys = ProviderKeys(issuer=provider.issuer, refresh_interval=60, max_age=3600, clock=clock)
        app = whoami(settings, TokenVerifier(settings, provider=keys))
        token = bearer(await provider.token("amy", AGENT))
        async with client_of(app) as desk:
            assert (await desk.get("/me", headers=token)).status_code == 200
    async with client_of(app) as desk:
        clock.now += 7200  # the keys are due to be fetched again, and the provider is gone
        assert (await desk.get("/me", headers=token)).status_code == 200, "the known keys stay in use"

    nowhere = sso(provider.issuer)  # the same address, where nothing listens now
    async with client_of(whoami(nowhere)) as desk:
        answer = await desk.get("/me", headers=token)
        assert problem(answer, 503) == "identity-provider-unreachable"


async def test_provider_tokens_are_refused_where_no_issuer_is_set(provider: Provider) -> None:
    async with client_of(whoami(CommonSettings(env="test"))) as desk:
        answer = await desk.get("/me", headers=bearer(await provider.token("amy", AGENT)))
    problem(answer, 401)
    assert "CSM_OIDC_ISSUER" in answer.json()["detail"]


async def test_in_production_only_tokens_signed_with_the_real_secret_are_accepted(provider: Provider) -> None:
    real_secret = secrets.token_hex(32)
    production = CommonSettings(
        env="production",
        jwt_secret=SecretStr(real_secret),
        kafka_allow_plaintext=True,
        oidc_issuer=provider.issuer.replace("http://", "https://"),
        oidc_audience="csm",
    )
    development = CommonSettings(env="development")
    assert development.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET
    async with client_of(whoami(production)) as desk:
        signed_for_laptops = mint_token(development, subject="amy", role=Role.admin)
        assert problem(await desk.get("/me", headers=bearer(signed_for_laptops)), 401) == "unauthorized"
        signed_here = mint_token(production, subject="shop-sync", role=Role.agent)
        assert (await desk.get("/me", headers=bearer(signed_here))).status_code == 200


def test_single_sign_on_settings_are_whole() -> None:
    with pytest.raises(ValidationError, match="needs CSM_OIDC_AUDIENCE"):
        CommonSettings(env="test", oidc_issuer="https://sso.example.com")
    with pytest.raises(ValidationError, match="only with CSM_OIDC_ISSUER"):
        CommonSettings(env="test", oidc_audience="csm")
    with pytest.raises(ValidationError, match="https URL in production"):
        CommonSettings(
            env="production",
            jwt_secret=SecretStr(secrets.token_hex(32)),
            kafka_allow_plaintext=True,
            oidc_issuer="http://sso.example.com",
            oidc_audience="csm",
        )
    with pytest.raises(ValidationError, match="http\\(s\\) URL"):
        CommonSettings(env="test", oidc_issuer="sso.example.com", oidc_audience="csm")
    assert CommonSettings(env="test").oidc_role_claim == "csm_role"


async def test_es256_tokens_are_checked_with_keys_from_the_jwks_url_given() -> None:
    curve = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published = {
        "keys": [
            {
                **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(curve.public_key())),
                "kid": "ec-1",
                "use": "sig",
            },
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1"},
            # A symmetric key in the set is never used: the provider's tokens are checked by public keys.
            {"kty": "oct", "k": base64.urlsafe_b64encode(b"k" * 32).rstrip(b"=").decode(), "kid": "oct-1"},
        ]
    }
    issuer = "https://sso.example.com/realms/csm"  # nothing is fetched from it: the keys' URL is given
    with KeySet(published) as key_set:
        settings = CommonSettings(
            env="test", oidc_issuer=issuer, oidc_audience="csm", oidc_jwks_url=key_set.url
        )
        async with client_of(whoami(settings)) as desk:
            claims = claims_for(issuer, csm_role="agent")

            def signed(key: Any, algorithm: str, kid: str) -> dict[str, str]:
                return bearer(jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid}))

            assert (await desk.get("/me", headers=signed(curve, "ES256", "ec-1"))).status_code == 200
            assert (await desk.get("/me", headers=signed(rsa_key, "RS256", "rsa-1"))).status_code == 200
            # A key serves its own algorithm only.
            assert (await desk.get("/me", headers=signed(curve, "ES256", "rsa-1"))).status_code == 401
            assert (await desk.get("/me", headers=signed(b"k" * 32, "HS256", "oct-1"))).status_code == 401
