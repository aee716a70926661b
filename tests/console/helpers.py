"""The console in process, for tests that need no browser: its own settings, and the form token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.settings import CommonSettings

# https: the session cookie is Secure, and an HTTP client keeps it for https addresses only.
CONSOLE = "https://console.test"


def settings_for_tests(**given: object) -> ConsoleSettings:
    return ConsoleSettings(common=CommonSettings(env="test"), **given)  # type: ignore[arg-type]


@asynccontextmanager
async def console(
    settings: ConsoleSettings, *, services: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, transport=services)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE) as client:
            yield app, client
    finally:
        await app.state.backends.close()


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)
