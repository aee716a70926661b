"""Single sign-on end to end, in a real browser: the services and the console (`csm up`) trust a real
OpenID Connect provider started by the test; an agent signs in there, and the console shows them their
own complaints and customers, read from the services with the provider's token, and acts on them: a
compensation within their limit is granted, one above it waits, a supervisor signed in at the same
provider approves it, the agent resolves the complaint, finds the customer by phone and opens another,
whose promise follows the customer's tier when a purchase makes them gold.

The provider (oidc-provider-mock) issues opaque access tokens, so the console forwards the ID token
(``CSM_CONSOLE_OIDC_TOKEN_FOR_SERVICES=id_token``), whose audience is the console's client id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from oidc_provider_mock import run_server_in_thread
from playwright.async_api import Page, expect

from services.registry import SERVICES
from shared.broker import free_port
from shared.roles import Role
from tests.console.browser import chromium, chromium_path, kept, opened_then_made_gold
from tests.e2e.system import System
from tests.harness import Databases, auth

pytestmark = pytest.mark.e2e

CLIENT_ID = "csm-console"
AGENT = "zhou.ning"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with run_server_in_thread(port=free_port()) as server:
        # The console is reached at 127.0.0.1 and the provider at localhost: the browser keeps their
        # cookies apart, as it would for two hosts.
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
async def system(
    tmp_path_factory: pytest.TempPathFactory, databases: Databases, provider: str
) -> AsyncIterator[System]:
    chromium_path()  # skip (or fail in CI) before starting anything
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    running = System(tmp_path_factory.mktemp("console-sso-system"), urls)
    running.env.update(
        {
            "CSM_OIDC_ISSUER": provider,
            "CSM_OIDC_AUDIENCE": CLIENT_ID,
            "CSM_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
            "CSM_CONSOLE_OIDC_CLIENT_SECRET": "console-secret",
            "CSM_CONSOLE_OIDC_TOKEN_FOR_SERVICES": "id_token",
        }
    )
    running.start()
    try:
        await running.wait_ready()
        yield running
    finally:
        running.stop()


def a_person_at_the_provider(provider: str, subject: str, claims: dict[str, str]) -> None:
    stored = httpx.put(
        f"{provider}/users/{subject}",
        content=json.dumps(claims),
        headers={"content-type": "application/json"},
    )
    assert stored.status_code == 204, stored.text


async def through_the_provider(page: Page, console: str, provider: str, subject: str) -> None:
    await page.goto(f"{console}/work")
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.wait_for_url(f"{provider}/oauth2/authorize*")
    await page.fill("input[name=sub]", subject)
    await page.click("button[type=submit]:has-text('Authorize')")
    await page.wait_for_url(f"{console}/work")


async def test_an_agent_and_a_supervisor_sign_in_at_the_provider_and_work_a_complaint_and_its_approval(
    provider: str, system: System
) -> None:
    a_person_at_the_provider(provider, AGENT, {"csm_role": "agent", "name": "Zhou Ning"})
    # The agent's complaint, opened earlier (with a development token naming the same person).
    headers = auth(Role.agent, subject=AGENT)
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers",
            json={"name": "Feng Yu", "phone": "+8613811112222"},
            headers=headers,
        )
        assert customer.status_code == 201, customer.text
        customer_id = customer.json()["id"]
        opened = await client.post(
            f"{system.url('complaints')}/complaints",
            json={
                "customer_id": customer_id,
                "channel": "phone",
                "category": "delivery",
                "description": "Two boxes of three arrived.",
            },
            headers=headers,
        )
        assert opened.status_code == 201, opened.text
    complaint_id = opened.json()["id"]

    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        page = await (await browser.new_context(locale="en-GB")).new_page()
        await through_the_provider(page, console, provider, AGENT)

        # The services took the provider's token: My work lists the agent's complaint, with its clocks.
        await expect(page.get_by_test_id("subject")).to_have_text(AGENT)
        await expect(page.get_by_role("alert")).to_have_count(0)
        complaint = page.locator(f"[data-testid=complaint][data-id='{complaint_id}']")
        await expect(complaint).to_be_visible()
        await expect(complaint.locator(".clock").first).to_be_visible()
        await kept(page, "my-work-sso.en.png")

        # Writing goes through with it too, and the service records the provider's person.
        await complaint.locator("a").first.click()
        await page.wait_for_url(f"{console}/complaints/{complaint_id}")
        await page.get_by_role("button", name="Acknowledge").click()
        await expect(page.get_by_test_id("status")).to_have_text("acknowledged")
        await page.get_by_role("button", name="Start work").click()
        await expect(page.get_by_test_id("status")).to_have_text("in progress")

        # Compensation within the agent's limit is granted; above it, it waits for a supervisor.
        offer = page.get_by_role("form", name="Offer compensation")
        await offer.get_by_label("Amount").fill("150")
        await offer.get_by_label("Reason").fill("The missing box, by courier")
        await offer.get_by_role("button", name="Offer compensation").click()
        await expect(page.get_by_test_id("granted")).to_have_text("150.00 CNY")
        await offer.get_by_label("Amount").fill("300")
        await offer.get_by_label("Reason").fill("A week without the third box")
        await offer.get_by_role("button", name="Offer compensation").click()
        await expect(page.get_by_role("alert")).to_contain_text("a supervisor must approve it")
        complaint_page = page.url

        # A supervisor, signed in at the provider too, approves it.
        a_person_at_the_provider(provider, "sup.qiao", {"csm_role": "supervisor", "name": "Qiao Lin"})
        supervisor = await (await browser.new_context(locale="en-GB")).new_page()
        await through_the_provider(supervisor, console, provider, "sup.qiao")
        await expect(supervisor.get_by_test_id("role")).to_have_text("supervisor")
        await supervisor.get_by_role("link", name="Approvals").click()
        waiting = supervisor.get_by_test_id("pending").filter(has_text="A week without the third box")
        await expect(waiting).to_contain_text("300.00 CNY")
        await waiting.get_by_role("button", name="Approve").click()
        await expect(
            supervisor.get_by_test_id("pending").filter(has_text="A week without the third box")
        ).to_have_count(0)
        await page.goto(complaint_page)
        await expect(page.get_by_test_id("granted")).to_have_text("450.00 CNY")

        # Nothing waits for approval any more: the agent resolves the complaint.
        resolution = page.get_by_role("form", name="Resolve")
        await resolution.get_by_label("Summary").fill("The third box came by courier.")
        await resolution.get_by_label("Root cause").select_option("carrier_delay")
        await resolution.get_by_role("button", name="Resolve").click()
        await expect(page.get_by_test_id("status")).to_have_text("resolved")
        await kept(page, "complaint-sso.en.png")

        # The customer, found by their phone as people write it; on the 360 view, a new complaint.
        await page.goto(f"{console}/customers?q=138 1111 2222")
        await page.get_by_test_id("customer").get_by_role("link", name="Feng Yu").click()
        await expect(page.get_by_test_id("customer-name")).to_contain_text("Feng Yu")
        await kept(page, "customer-sso.en.png")
        await opened_then_made_gold(
            page,
            console=console,
            customer_url=f"{system.url('customer')}/customers/{customer_id}",
            name="Feng Yu",
            order_id="SO-7100",
            headers=headers,
            shots="-sso",
        )
        await page.close()

    async with httpx.AsyncClient(timeout=15) as client:
        steps = await client.get(
            f"{system.url('complaints')}/complaints/{complaint_id}/transitions", headers=headers
        )
    [acknowledged] = [step for step in steps.json()["items"] if step["to_status"] == "acknowledged"]
    assert acknowledged["actor"] == AGENT, steps.text
    async with httpx.AsyncClient(timeout=15) as client:
        offers = await client.get(
            f"{system.url('complaints')}/complaints/{complaint_id}/compensations", headers=headers
        )
    [approved] = [
        offer for offer in offers.json()["items"] if offer["reason"] == "A week without the third box"
    ]
    assert approved["status"] == "granted", offers.text
    assert approved["decided_by"] == "sup.qiao", offers.text
