"""Single sign-on in a real browser: the console (as `csm console` runs it) sends the person to a real
OpenID Connect provider and back, keeps the session in its cookie, and signs out at the provider too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from oidc_provider_mock import run_server_in_thread
from playwright.async_api import expect

from shared.broker import free_port
from tests.console.browser import chromium, chromium_path, kept

pytestmark = pytest.mark.e2e


@pytest.fixture
def provider() -> Iterator[str]:
    with run_server_in_thread(port=free_port()) as server:
        issuer = f"http://localhost:{server.server_port}"
        claims = {"csm_role": "supervisor", "name": "Wang Fang", "email": "wang.fang@example.com"}
        answer = httpx.put(
            f"{issuer}/users/wang.fang",
            content=json.dumps(claims),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 204, answer.text
        yield issuer


@pytest.fixture
def console(provider: str) -> Iterator[str]:
    """The console alone, with single sign-on; no service answers behind it."""
    chromium_path()
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CSM_")},
        "CSM_ENV": "test",
        "CSM_CONSOLE_PORT": str(port),
        "CSM_OIDC_ISSUER": provider,
        # The services' settings (shared with the console) require the audience with the issuer.
        "CSM_OIDC_AUDIENCE": "csm-console",
        "CSM_CONSOLE_OIDC_CLIENT_ID": "csm-console",
        "CSM_CONSOLE_OIDC_CLIENT_SECRET": "console-secret",
        **{
            f"CSM_CONSOLE_{name}_URL": nowhere
            for name in ("CUSTOMER", "SEGMENTATION", "COMPLAINTS", "NOTIFY")
        },
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "console"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert process.poll() is None, "the console exited"
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(15)


async def test_a_supervisor_signs_in_through_the_provider_and_out_again(provider: str, console: str) -> None:
    async with chromium() as browser:
        context = await browser.new_context(locale="en-GB")
        page = await context.new_page()
        await page.goto(f"{console}/work")
        await kept(page, "sign-in-sso.en.png")
        await page.get_by_role("link", name="Sign in with your company account").click()
        await page.wait_for_url(f"{provider}/oauth2/authorize*")
        await page.fill("input[name=sub]", "wang.fang")
        await page.click("button[type=submit]:has-text('Authorize')")
        await page.wait_for_url(f"{console}/work")

        # Signed in as the provider's subject with its role; no service answers, and the page says so.
        await expect(page.get_by_test_id("subject")).to_have_text("wang.fang")
        await expect(page.get_by_test_id("role")).to_have_text("supervisor")
        await expect(page.get_by_role("alert")).to_contain_text("does not answer")
        [cookie] = [c for c in await context.cookies() if c["name"] == "csm_console"]
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
        assert await page.evaluate("document.cookie") == ""

        await page.click("header form[action='/sign-out'] button")
        await page.wait_for_url(f"{provider}/oauth2/end_session*")
        await page.click("form button[type=submit]")
        await page.wait_for_url(f"{console}/sign-in*")
        await page.goto(f"{console}/work")
        await page.wait_for_url(f"{console}/sign-in?next=/work")
        await expect(page.get_by_test_id("subject")).to_have_count(0)
        await context.close()
