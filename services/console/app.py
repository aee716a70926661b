"""The console's FastAPI application: pages, sign-in, the session cookie and the headers that keep it safe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import complaint_pages, customer_actions, management, pages, policies, signin
from services.console.backends import Backends, ServiceRefused, ServiceUnreachable, TokenRefused
from services.console.csrf import CsrfRefused
from services.console.session import SignInRequired, sign_out
from services.console.settings import ConsoleSettings
from services.console.views import back_to, notify, render, safe_next
from shared import VERSION

SESSION_COOKIE = "csm_console"

# Every asset comes from the console itself: a page that tried to load anything from elsewhere (a CDN)
# would be refused by the browser, and the tests look for such a reference too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' {provider}; frame-ancestors 'none'; base-uri 'self'"
)


class SecurityHeaders:
    """Headers on every answer: the content security policy, no framing, no sniffing, no caching of pages."""

    def __init__(self, app: ASGIApp, *, form_targets: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.format(provider=form_targets).encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _came_from(request: Request) -> str:
    referer = request.headers.get("referer")
    if not referer:
        return "/work"
    parts = urlsplit(referer)
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def create_app(
    settings: ConsoleSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or ConsoleSettings()
    backends = Backends(settings, transport=transport)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backends.close()

    app = FastAPI(
        title="csm console",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.backends = backends
    app.state.oauth = signin.register_provider(settings)
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(complaint_pages.router)
    app.include_router(customer_actions.router)
    app.include_router(management.router)
    app.include_router(policies.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return JSONResponse({"status": "ready"})

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, _error: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = _came_from(request)
        return back_to(f"/sign-in?next={safe_next(target)}")

    @app.exception_handler(TokenRefused)
    async def signed_out(request: Request, _error: TokenRefused) -> Response:
        sign_out(request)
        return back_to("/sign-in")

    @app.exception_handler(ServiceRefused)
    async def refused(request: Request, error: ServiceRefused) -> Response:
        if request.method == "POST":
            notify(request, error.detail)
            return back_to(_came_from(request))
        return render(request, "error.html", status_code=error.status, message=error.detail)

    @app.exception_handler(ServiceUnreachable)
    async def unreachable(request: Request, error: ServiceUnreachable) -> Response:
        return render(
            request, "error.html", status_code=503, message_key="error.unreachable", service=error.service
        )

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _error: CsrfRefused) -> Response:
        return render(request, "error.html", status_code=403, message_key="error.csrf")

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(part) for part in item["loc"][1:]) for item in error.errors())
        return render(request, "error.html", status_code=422, message=f"not accepted: {fields}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            return render(request, "error.html", status_code=404, message_key="error.not_found")
        return render(request, "error.html", status_code=error.status_code, message=str(error.detail))

    provider = urlsplit(settings.oidc_issuer or "")
    form_targets = f"{provider.scheme}://{provider.netloc}" if provider.netloc else ""
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.session_hours * 3600),
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(SecurityHeaders, form_targets=form_targets)
    return app
