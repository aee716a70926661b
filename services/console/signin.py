"""Signing in and out: single sign-on through the company's OpenID Connect provider (authorization code
with PKCE, by Authlib), and, off production, a development sign-in that mints a local token."""

from __future__ import annotations

import dataclasses
import time
import warnings
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client.errors import OAuthError
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import session
from services.console.csrf import CsrfChecked
from services.console.settings import ConsoleSettings
from services.console.views import back_to, render, safe_next
from shared.auth import mint_token
from shared.roles import STAFF_RANK, Role

with warnings.catch_warnings():
    # Authlib 1.9 would rather run on the httpx2 fork and says so when it uses httpx, which csm pins.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

router = APIRouter()

PROVIDER = "provider"


def register_provider(settings: ConsoleSettings) -> OAuth | None:
    """The provider's client, its endpoints read from the issuer's discovery document on first use."""
    if not settings.single_sign_on:
        return None
    assert settings.oidc_issuer is not None
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256"},
    )
    return oauth


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _provider(request: Request) -> StarletteOAuth2App | None:
    oauth: OAuth | None = request.app.state.oauth
    return None if oauth is None else oauth.create_client(PROVIDER)


def _own_url(request: Request, route: str) -> str:
    public = _settings(request).public_url
    if public:
        return public.rstrip("/") + str(request.app.url_path_for(route))
    return str(request.url_for(route))


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    settings = _settings(request)
    return render(
        request,
        "sign_in.html",
        next=safe_next(next),
        sso=settings.single_sign_on,
        development=settings.development_sign_in,
        roles=[role.value for role in STAFF_RANK],
        failed=request.query_params.get("failed"),
    )


@router.post("/sign-in/development")
async def development_sign_in(
    request: Request,
    _csrf: CsrfChecked,
    role: Annotated[Role, Form()],
    subject: Annotated[str, Form(min_length=1, max_length=200)],
    name: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form()] = "/work",
) -> Response:
    settings = _settings(request)
    if not settings.development_sign_in or role not in STAFF_RANK:
        return render(request, "error.html", status_code=403, message="development sign-in is refused here")
    lifetime = timedelta(hours=min(settings.session_hours, settings.common.jwt_max_lifetime_hours))
    token = mint_token(settings.common, subject=subject, role=role, ttl=lifetime, name=name or None)
    session.sign_in(
        request,
        session.Person(
            subject=subject,
            role=role,
            name=name or subject,
            token=token,
            expires_at=time.time() + lifetime.total_seconds(),
            via="development",
        ),
    )
    return back_to(safe_next(next))


@router.get("/sign-in/oidc")
async def oidc_sign_in(request: Request, next: str | None = None) -> Response:
    provider = _provider(request)
    if provider is None:
        return render(request, "error.html", status_code=404, message="single sign-on is not configured")
    request.session["after_sign_in"] = safe_next(next)
    redirect: Response = await provider.authorize_redirect(request, _own_url(request, "oidc_callback"))
    return redirect


@router.get("/sign-in/callback", name="oidc_callback")
async def oidc_callback(request: Request) -> Response:
    provider = _provider(request)
    if provider is None:
        return render(request, "error.html", status_code=404, message="single sign-on is not configured")
    try:
        token: dict[str, Any] = await provider.authorize_access_token(request)
    except OAuthError as refused:
        return back_to("/sign-in?" + urlencode({"failed": refused.description or refused.error}))
    claims: dict[str, Any] = dict(token.get("userinfo") or {})
    role_claim = _settings(request).oidc_role_claim
    if role_claim not in claims:
        claims.update(await provider.userinfo(token=token))
    try:
        role = Role(str(claims.get(role_claim)))
    except ValueError:
        role = None
    if role is None or role not in STAFF_RANK:
        return back_to("/sign-in?" + urlencode({"failed": "no_role"}))
    after = safe_next(request.session.pop("after_sign_in", None))
    person = session.Person(
        subject=str(claims["sub"]),
        role=role,
        name=str(claims.get("name") or claims.get("email") or claims["sub"]),
        token=str(token[_settings(request).oidc_token_for_services]),
        expires_at=float(token.get("expires_at") or time.time() + 3600),
        via="oidc",
        id_token=token.get("id_token"),
    )
    if not session.fits_in_the_cookie(request, person):
        # The ID token only names the session when signing out at the provider: it can be spared.
        person = dataclasses.replace(person, id_token=None)
    if not session.fits_in_the_cookie(request, person):
        return back_to("/sign-in?" + urlencode({"failed": "the provider's token is too large for a cookie"}))
    session.sign_in(request, person)
    return back_to(after)


@router.post("/sign-out")
async def sign_out(request: Request, _csrf: CsrfChecked) -> Response:
    person = session.sign_out(request)
    provider = _provider(request)
    if person is not None and person.via == "oidc" and provider is not None:
        metadata = await provider.load_server_metadata()
        end_session = metadata.get("end_session_endpoint")
        if end_session:
            # The provider's session ends too, and it sends the person back to the sign-in page.
            query = {
                "post_logout_redirect_uri": _own_url(request, "sign_in_page"),
                "client_id": _settings(request).oidc_client_id,
            }
            if person.id_token:
                query["id_token_hint"] = person.id_token
            return RedirectResponse(f"{end_session}?{urlencode(query)}", status_code=303)
    return back_to("/sign-in")
