"""Cross-site request forgery: every form carries the session's secret token, and every POST checks it.

The session cookie is SameSite=Lax already; the token is the second lock, for browsers and paths where
SameSite does not hold.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request


class CsrfRefused(Exception):
    """A form came back without this session's token."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked(request: Request) -> None:
    form = await request.form()
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str) and secrets.compare_digest(sent, expected)):
        raise CsrfRefused()


CsrfChecked = Annotated[None, Depends(checked)]
