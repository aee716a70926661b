"""Errors as RFC 9457 problem details, rendered by one set of handlers.

Domain code raises a ``Problem`` subclass that carries its HTTP status; nothing else in a
service builds an error response.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("csm.problems")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://csm.dev/problems/"


class FieldError(BaseModel):
    field: str
    location: str
    message: str
    type: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; ``errors`` names each field at fault."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


# RFC 9457's own members; an extension may not take their names.
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class Problem(Exception):
    status: int = 500
    title: str = "Internal error"
    slug: str = "internal-error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        if clash := RESERVED_MEMBERS & extensions.keys():
            raise TypeError(f"{sorted(clash)} are members of every problem, not extensions")
        super().__init__(detail or self.title)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class Unauthorized(Problem):
    status, title, slug = 401, "Not authenticated", "unauthorized"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(Problem):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class Unprocessable(Problem):
    """Well-formed input that breaks a rule; ``field`` names the input at fault."""

    status, title, slug = 422, "Invalid input", "validation-error"

    def __init__(self, detail: str, *, field: str, location: str = "body", **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.extensions["errors"] = [
            {"field": field, "location": location, "message": detail, "type": "rule"}
        ]


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service unavailable", "unavailable"


STATUS_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
}


def problem_response(
    status: int,
    title: str,
    *,
    slug: str,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for item in error.errors():
        location, *path = [str(part) for part in item.get("loc", ())] or ["body"]
        errors.append(
            {
                "field": ".".join(path) or location,
                "location": location,
                "message": item.get("msg", "invalid"),
                "type": item.get("type", "invalid"),
            }
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _on_problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(
            problem.status,
            problem.title,
            slug=problem.slug,
            detail=problem.detail,
            instance=request.url.path,
            headers=problem.headers or None,
            **problem.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = _field_errors(error)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
        return problem_response(
            422,
            "Invalid input",
            slug="validation-error",
            detail=detail,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        title = STATUS_TITLES.get(error.status_code, "Error")
        detail = error.detail if isinstance(error.detail, str) and error.detail != title else None
        return problem_response(
            error.status_code,
            title,
            slug=title.lower().replace(" ", "-"),
            detail=detail,
            instance=request.url.path,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        log.exception("unhandled error on %s %s", request.method, route)
        # The server closes the connection after an unhandled error: say so, so that a client does
        # not send its next request down a connection that is about to be reset.
        return problem_response(
            500,
            "Internal error",
            slug="internal-error",
            instance=request.url.path,
            headers={"Connection": "close"},
        )
