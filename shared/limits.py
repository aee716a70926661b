"""What one request may cost, and what no text field may hold, checked before a route sees the body.

A JSON body may also nest at most ``MAX_DEPTH`` levels, and no string in it may hold NUL or
other control characters (tab, line feed and carriage return excepted): PostgreSQL cannot store
NUL at all (it used to be a 500), and a terminal escape in a name is an attack on whoever reads
the logs or an export. Such a body is a 422 naming the field.


Without it one token holder could send 20 MB of JSON with a million keys and keep a service busy
(and growing) for a minute. A body over the cap is refused with 413 as soon as its declared length
or the bytes received so far say so, without being handed to the application. Routes that take a
large upload by streaming it (a CSV import) are named as exceptions and enforce their own limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response

# A refused body is read and thrown away up to this much, so that the client (still sending) gets
# the 413 rather than a reset connection; past it the connection is closed mid-body.
_DRAIN_BYTES = 64_000_000


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, streamed_paths: Sequence[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed_paths = tuple(streamed_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.streamed_paths):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read the body here, counting, and hand the application what was read.
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        if _is_json(scope) and (fault := _text_fault(b"".join(m.get("body", b"") for m in received))):
            field, reason = fault
            response = problem_response(
                422,
                "Invalid input",
                slug="validation-error",
                detail=f"{field}: {reason}",
                instance=scope["path"],
                errors=[{"field": field, "location": "body", "message": reason, "type": "text"}],
            )
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        drained = 0
        while drained < _DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response = problem_response(
            413,
            "Request body too large",
            slug="body-too-large",
            detail=f"The body may be at most {self.max_bytes} bytes.",
            instance=scope["path"],
            headers={"Connection": "close"},
            limit=self.max_bytes,
        )
        await response(scope, receive, send)


MAX_DEPTH = 32
# C0 controls but tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    return b"json" in content_type


def _text_fault(body: bytes) -> tuple[str, str] | None:
    """The first field whose text breaks the rules, and why; None if the body is fine (or not JSON)."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None  # the route answers that, naming the position
    stack: list[tuple[str, object, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path or "body", f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            if _CONTROL.search(value):
                return path or "body", "must not contain NUL or other control characters"
        elif isinstance(value, dict):
            stack.extend(
                (f"{path}.{key}" if path else str(key), item, depth + 1) for key, item in value.items()
            )
        elif isinstance(value, list):
            stack.extend(
                (f"{path}.{index}" if path else str(index), item, depth + 1)
                for index, item in enumerate(value)
            )
    return None


_DOCS = ("/docs", "/redoc", "/static-offline-docs")
_API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The offline Swagger UI and ReDoc pages run an inline script and load their assets from here.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Headers every answer carries: no sniffing, no framing, no caching of what may be personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(_DOCS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", (_DOCS_POLICY if docs else _API_POLICY).encode()),
                ]
                if not docs:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
