"""Debian's chromium driven by Playwright, for the console's browser tests; Playwright downloads no browser.

`make test` installs the ``chromium`` package when it is missing. Where none can be had, the browser tests
skip locally and fail in CI (``CI`` set), so a CI that lost its browser cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.harness import eventually

# Where the screenshots of each page are kept: CSM_TEST_ARTIFACTS, or var/test-artifacts of the checkout.
ARTIFACTS = Path(
    os.environ.get("CSM_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
)


def chromium_path() -> str:
    found = os.environ.get("CSM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "no chromium: `apt-get install chromium` (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


def artifact(name: str) -> Path:
    folder = ARTIFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


async def accessibility_faults(page: Page) -> list[str]:
    """The serious and critical violations axe-core finds (the copy axe-playwright-python ships)."""
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [
        f"{v['impact']} {v['id']}: {v['help']} ({[n['target'] for n in v['nodes']][:3]})"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


async def kept(page: Page, name: str) -> None:
    """Keep a screenshot of the page, and hold it to the accessibility check."""
    await page.screenshot(path=artifact(name), full_page=True)
    faults = await accessibility_faults(page)
    assert faults == [], f"{name}: {faults}"


async def opened_then_made_gold(
    page: Page,
    *,
    console: str,
    customer_url: str,
    name: str,
    order_id: str,
    headers: dict[str, str],
    shots: str = "",
) -> None:
    """On a customer's screen: open a complaint, then a purchase (through ``customer_url``) makes the
    customer gold, and the complaint's tier and response promise, then the customer's screen, follow.
    The screenshots are kept under names ending in ``shots``."""
    opening = page.get_by_role("form", name="Open a complaint")
    await opening.get_by_label("Category").select_option("billing")
    await opening.get_by_label("What the customer said").fill("Charged twice for one order.")
    await opening.get_by_role("button", name="Open the complaint").click()
    await page.wait_for_url(f"{console}/complaints/*")
    await expect(page.get_by_test_id("status")).to_have_text("new")
    response_clock = page.locator(".clock").filter(has_text="response").locator("time")
    before = await response_clock.inner_text()
    await kept(page, f"complaint-new{shots}.en.png")

    async with httpx.AsyncClient(timeout=15) as client:
        bought = await client.post(
            f"{customer_url}/purchases",
            json={"order_id": order_id, "amount": "15000.00", "currency": "CNY"},
            headers=headers,
        )
        assert bought.status_code == 201, bought.text

    async def on_the_gold_promise() -> None:
        await page.reload()
        assert await page.locator("h1 .tier").count() == 1
        assert await page.locator("h1 .tier").inner_text() == "gold"
        assert await response_clock.inner_text() != before

    await eventually(on_the_gold_promise, timeout=60, interval=0.5)
    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_test_id("tier")).to_have_text("gold")
    await expect(page.get_by_test_id("tier-rule")).to_contain_text("gold")
    await kept(page, f"customer-gold{shots}.en.png")
