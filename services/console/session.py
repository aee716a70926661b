"""Who is signed in: the person's subject, role, name and token, kept in the signed session cookie.

The cookie is HTTP-only, so page JavaScript never sees the token; the console sends it, server-side,
on every call it makes to the four services for this person.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from shared.roles import Role

SignInKind = Literal["development", "oidc"]


@dataclass(frozen=True)
class Person:
    subject: str
    role: Role
    name: str
    token: str
    # Seconds since the epoch: after it, the services refuse the token, so the console signs the person out.
    expires_at: float
    via: SignInKind
    # The provider's ID token, named when asking the provider to end its session too.
    id_token: str | None = None


# Browsers keep a cookie of at most 4096 bytes and silently drop a larger one; the signature and the
# cookie's attributes take the rest.
COOKIE_ROOM = 3900


def fits_in_the_cookie(request: Request, person: Person) -> bool:
    """Whether the session, with ``person`` signed in, still fits in the one cookie that carries it."""
    kept = {"language": request.session.get("language")}
    session = {**kept, "person": {**asdict(person), "role": person.role.value}, "csrf": "x" * 43}
    return len(base64.b64encode(json.dumps(session).encode())) <= COOKIE_ROOM


class SignInRequired(Exception):
    """No one (or no one whose token still works) is signed in; the page sends them to sign in."""


def sign_in(request: Request, person: Person) -> None:
    """Start a fresh session for ``person``; only the chosen language survives from before."""
    language = request.session.get("language")
    request.session.clear()
    if language:
        request.session["language"] = language
    request.session["person"] = {**asdict(person), "role": person.role.value}
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> Person | None:
    person = current(request)
    language = request.session.get("language")
    request.session.clear()
    if language:
        request.session["language"] = language
    return person


def current(request: Request) -> Person | None:
    stored = request.session.get("person")
    if not isinstance(stored, dict):
        return None
    try:
        person = Person(**{**stored, "role": Role(stored["role"])})
    except (TypeError, ValueError, KeyError):
        return None
    if person.expires_at <= time.time():
        return None
    return person


async def signed_in(request: Request) -> Person:
    person = current(request)
    if person is None:
        raise SignInRequired()
    return person


SignedIn = Annotated[Person, Depends(signed_in)]
