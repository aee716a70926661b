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

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

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
