"""The accessibility check the browser tests apply to every page can fail: it finds a fault that is there."""

from __future__ import annotations

from tests.console.browser import accessibility_faults, chromium


async def test_a_page_with_an_unlabelled_field_fails_the_check() -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.set_content(
            '<html lang="en"><head><title>t</title></head><body><main>'
            '<input type="text"></main></body></html>'
        )
        faults = await accessibility_faults(page)
        await page.set_content(
            '<html lang="en"><head><title>t</title></head><body><main>'
            '<label for="q">Query</label><input id="q" type="text"><p>clear</p></main></body></html>'
        )
        assert await accessibility_faults(page) == []
    assert any(fault.startswith("critical label") for fault in faults), faults
