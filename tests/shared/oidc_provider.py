"""A real OpenID Connect provider for tests: PyPI's oidc-provider-mock, served on a free loopback port.

Tokens are got the way a browser's sign-in gets them: the person's claims are stored at the
provider (``PUT /users/<sub>``), the authorization endpoint is answered for that subject, and the
code is exchanged at the token endpoint for an ID token, an RS256 JWT whose audience is the client
id. The provider names itself after the host a request reached it by, so a token asked for under
another host name carries another issuer, signed with the same key.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import flask
import httpx
from werkzeug.serving import make_server

with warnings.catch_warnings():
    # It imports parts of authlib that authlib has deprecated; authlib's own filter shows those
    # warnings always, so it is put in place first and then overruled, for this import only.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    import oidc_provider_mock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REDIRECT_URI = "http://127.0.0.1/signed-in"


class Provider:
    """The provider in a thread; ``rotate()`` replaces it by one with a new key under the same issuer."""

    def __init__(self, *, token_lifetime: timedelta = timedelta(hours=1)) -> None:
        self.token_lifetime = token_lifetime
        self.jwks_fetches = 0
        self._app = self._new_app()
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def rotate(self) -> None:
        """A new signing key (and key id) under the same issuer; the old key is no longer published."""
        self._app = self._new_app()

    async def token(
        self,
        subject: str,
        claims: dict[str, Any] | None = None,
        *,
        audience: str = "csm",
        host: str | None = None,
        scopes: Iterable[str] = ("openid", "profile"),
    ) -> str:
        """An ID token for ``subject`` with ``claims``, for the client ``audience``."""
        async with httpx.AsyncClient(base_url=self.issuer) as client:
            stored = await client.put(f"/users/{quote(subject, safe='')}", json=claims or {})
            assert stored.status_code == 204, stored.text
            authorized = await client.post(
                "/oauth2/authorize",
                params={
                    "client_id": audience,
                    "redirect_uri": REDIRECT_URI,
                    "response_type": "code",
                    "scope": " ".join(scopes),
                },
                data={"sub": subject},
            )
            assert authorized.status_code == 302, authorized.text
            code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
            headers = {"Host": f"{host}:{self._server.server_port}"} if host else {}
            issued = await client.post(
                "/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "client_id": audience,
                    "client_secret": "any",
                },
                headers=headers,
            )
            assert issued.status_code == 200, issued.text
            token: str = issued.json()["id_token"]
            return token

    async def jwks(self) -> dict[str, Any]:
        """The published keys (counted among ``jwks_fetches`` like any other look)."""
        async with httpx.AsyncClient(base_url=self.issuer) as client:
            document: dict[str, Any] = (await client.get("/jwks")).json()
            return document

    def _new_app(self) -> flask.Flask:
        app: flask.Flask = oidc_provider_mock.app(access_token_max_age=self.token_lifetime)

        @app.before_request
        def count_key_fetches() -> None:
            if flask.request.path == "/jwks":
                self.jwks_fetches += 1

        return app

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._app(environ, start_response)

    def __enter__(self) -> Provider:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


class KeySet:
    """A JWKS document served on a loopback port, for a provider whose keys are given by URL."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        app = flask.Flask(__name__)
        app.add_url_rule("/keys", "keys", lambda: flask.jsonify(self.document))
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/keys"

    def __enter__(self) -> KeySet:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
