"""The session lives in one cookie, which a browser drops silently past 4 KiB: sign-in checks it fits."""

from __future__ import annotations

import time

from starlette.requests import Request

from services.console.session import Person, fits_in_the_cookie
from shared.roles import Role


def person(token: str, id_token: str | None = None) -> Person:
    return Person(
        subject="wang.fang",
        role=Role.agent,
        name="Wang Fang",
        token=token,
        expires_at=time.time() + 3600,
        via="oidc",
        id_token=id_token,
    )


def a_request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "session": {}})


def test_a_provider_token_of_ordinary_size_fits() -> None:
    assert fits_in_the_cookie(a_request(), person("a" * 1200, id_token="b" * 1000))


def test_tokens_too_large_for_a_cookie_do_not_fit() -> None:
    assert not fits_in_the_cookie(a_request(), person("a" * 1200, id_token="b" * 2000))
    assert fits_in_the_cookie(a_request(), person("a" * 1200))
    assert not fits_in_the_cookie(a_request(), person("a" * 3000))
