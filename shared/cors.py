"""Cross-origin requests from front-end apps on other origins (``CSM_CORS_ORIGINS``), with Starlette's CORS.

Only the listed origins are allowed, and with none listed (the default) no CORS header is sent at
all, so a browser keeps every other site's pages from reading the APIs. Credentials mode stays
off: the APIs take a bearer token in the ``Authorization`` header, which a front end sends itself,
never cookies, so a browser need not (and does not) attach its cookies to a cross-origin call.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from shared.problems import problem_response

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Beyond the CORS-safelisted ones: the token, JSON bodies, retried POSTs, and a trace's context.
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "traceparent", "tracestate")
EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")
# How long a browser may reuse a preflight's answer, in seconds.
PREFLIGHT_MAX_AGE = 600


class CrossOriginMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem details like every other refusal."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=tuple(origins),
            allow_methods=METHODS,
            allow_headers=REQUEST_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code == 200:
            return answer
        refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ")
        return problem_response(
            403,
            "Not allowed",
            slug="cross-origin-refused",
            detail=f"This cross-origin request is not allowed (its {refused}); see CSM_CORS_ORIGINS.",
            headers={"Vary": answer.headers["vary"]},
        )
