"""Every asset ships with the console: no template or script names another origin (no CDN), and the
content security policy tells the browser to load nothing from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import services.console
from tests.console.helpers import console, settings_for_tests

CONSOLE = Path(services.console.__file__).parent


def test_no_template_or_asset_refers_to_another_origin() -> None:
    files = [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("static/*")]
    assert len(files) > 5
    for file in files:
        text = file.read_text()
        # An absolute or protocol-relative address in an attribute, a CSS url() or an import.
        found = re.findall(r"""(?:src|href|action|url\()\s*=?\s*["']?\s*(?:https?:)?//""", text)
        assert found == [], (file.name, found)


async def test_every_page_tells_the_browser_to_load_only_from_the_console() -> None:
    async with console(settings_for_tests()) as (_app, client):
        page = await client.get("/sign-in")
        policy = page.headers["content-security-policy"]
        assert (
            "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
        )
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert 'src="/static/console.js"' in page.text and 'href="/static/console.css"' in page.text
        assert (await client.get("/static/console.js")).status_code == 200
