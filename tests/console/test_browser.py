"""The console in a real browser, on the real system (`csm up` with its broker, services and console):
an agent signs in, sees their complaint with its clocks and their task on My work, claims and completes the
task, finds the customer by phone and reads the 360 view, in Chinese and English. Every page loads from the
console alone (no CDN), and a screenshot of each is kept."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from services.registry import SERVICES
from shared.roles import Role
from tests.console.browser import chromium, chromium_path, kept, opened_then_made_gold
from tests.e2e.system import System
from tests.harness import Databases, auth, eventually

pytestmark = pytest.mark.e2e

AGENT = "agent.li"
PHONE = "+8613912345678"


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> AsyncIterator[System]:
    """One running system for the module's tests: each makes its own customers and people."""
    chromium_path()  # skip (or fail in CI) before starting anything
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    running = System(tmp_path_factory.mktemp("console-system"), urls)
    running.start()
    try:
        await running.wait_ready()
        yield running
    finally:
        running.stop()


async def seeded(system: System) -> dict[str, Any]:
    """A customer with a purchase, and a complaint of the agent's that a poor survey reopened with a task."""
    agent = auth(Role.agent, subject=AGENT)
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers",
            json={"name": "Zhao Min", "phone": PHONE, "email": "zhao.min@example.com"},
            headers=agent,
        )
        assert customer.status_code == 201, customer.text
        customer_id = customer.json()["id"]
        bought = await client.post(
            f"{system.url('customer')}/customers/{customer_id}/purchases",
            json={"order_id": "SO-7001", "amount": "899.00", "currency": "CNY"},
            headers=agent,
        )
        assert bought.status_code == 201, bought.text
        complaints = system.url("complaints")
        opened = await client.post(
            f"{complaints}/complaints",
            json={
                "customer_id": customer_id,
                "channel": "phone",
                "category": "delivery",
                "description": "The parcel arrived crushed.",
            },
            headers=agent,
        )
        assert opened.status_code == 201, opened.text
        complaint_id = opened.json()["id"]
        for step, body in (
            ("transitions", {"to": "acknowledged"}),
            ("resolution", {"summary": "Sent a new one.", "root_cause": "carrier_delay"}),
            ("survey", {"csat": 1, "comment": "Still unhappy."}),
        ):
            answer = await client.post(
                f"{complaints}/complaints/{complaint_id}/{step}", json=body, headers=agent
            )
            assert answer.status_code in (200, 201), (step, answer.text)

        async def the_follow_up_task() -> dict[str, Any]:
            tasks = await client.get(
                f"{system.url('notify')}/tasks", params={"assignee": AGENT}, headers=agent
            )
            items: list[dict[str, Any]] = tasks.json()["items"]
            assert items, tasks.text
            return items[0]

        task = await eventually(the_follow_up_task, timeout=60)
    return {"customer_id": customer_id, "complaint_id": complaint_id, "task": task}


def only_from(origin: str, requests: list[Request]) -> list[str]:
    return [request.url for request in requests if not request.url.startswith(origin)]


async def sign_in(page: Page, console: str, *, role: str, subject: str, name: str) -> None:
    await page.goto(f"{console}/work")
    assert "/sign-in" in page.url
    await page.select_option("#role", role)
    await page.fill("#subject", subject)
    await page.fill("#name", name)
    await page.click("form[action='/sign-in/development'] button[type=submit]")
    await page.wait_for_url(f"{console}/work")


async def test_an_agent_works_their_complaint_and_task_and_reads_the_customer_in_the_browser(
    system: System,
) -> None:
    facts = await seeded(system)
    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        requests: list[Request] = []

        def seen(request: Request) -> None:
            requests.append(request)

        page.on("request", seen)

        await sign_in(page, console, role="agent", subject=AGENT, name="Li Lei")
        assert not [c for c in await context.cookies() if c["name"] == "csm_console" and not c["httpOnly"]]
        assert await page.evaluate("document.cookie") == "", "the session is out of the page's reach"
        await expect(page.get_by_test_id("subject")).to_have_text(AGENT)
        await expect(page.locator("h1")).to_have_text("我的工作")

        complaint = page.locator(f"[data-testid=complaint][data-id='{facts['complaint_id']}']")
        await expect(complaint).to_contain_text("重新打开")
        await expect(complaint.locator(".clock").first).to_be_visible()
        # The page's script counts the time left down.
        await expect(complaint.locator(".clock .countdown").first).to_contain_text("剩余")
        task = page.get_by_test_id("task").filter(has_text="满意度差评回访")
        await expect(task).to_be_visible()
        await kept(page, "my-work.zh.png")

        await task.get_by_role("button", name="认领").click()
        await page.wait_for_url(f"{console}/work")
        await task.get_by_label("处理结果").fill("Called back; a voucher agreed.")
        await task.get_by_role("button", name="完成").click()
        await page.wait_for_url(f"{console}/work")
        await expect(page.get_by_test_id("task").filter(has_text="满意度差评回访")).to_have_count(0)

        await page.select_option("#language", "en")
        await expect(page.locator("h1")).to_have_text("My work")

        await page.click("nav >> text=Customers")
        await page.fill("#q", "139 1234 5678")
        await page.press("#q", "Enter")
        await page.get_by_test_id("customer").get_by_role("link", name="Zhao Min").click()
        await expect(page.get_by_test_id("customer-name")).to_contain_text("Zhao Min")
        await expect(page.locator("#purchases + ul")).to_contain_text("SO-7001")
        await expect(
            page.locator(f"[data-testid=complaint][data-id='{facts['complaint_id']}']")
        ).to_be_visible()
        await kept(page, "customer.en.png")

        await page.goto(f"{console}/customers")
        await kept(page, "customers.en.png")
        await page.click("header form[action='/sign-out'] button")
        await page.wait_for_url(f"{console}/sign-in")
        await kept(page, "sign-in.en.png")

        assert only_from(console, requests) == [], "every asset comes from the console"
        await context.close()

    async with httpx.AsyncClient() as client:
        done = await client.get(
            f"{system.url('notify')}/tasks/{facts['task']['id']}", headers=auth(Role.agent, subject=AGENT)
        )
    assert done.json()["status"] == "done" and done.json()["completed_by"] == AGENT


async def a_new_complaint(system: System, *, agent: str, name: str) -> str:
    headers = auth(Role.agent, subject=agent)
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers", json={"name": name}, headers=headers
        )
        assert customer.status_code == 201, customer.text
        opened = await client.post(
            f"{system.url('complaints')}/complaints",
            json={
                "customer_id": customer.json()["id"],
                "channel": "web",
                "category": "product_quality",
                "description": "The kettle stopped heating after a week.",
            },
            headers=headers,
        )
        assert opened.status_code == 201, opened.text
        return str(opened.json()["id"])


async def test_an_agent_resolves_a_complaint_with_compensation_and_a_supervisor_approves_what_goes_beyond(
    system: System,
) -> None:
    complaint_id = await a_new_complaint(system, agent="agent.wu", name="Qian Jun")
    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        agent = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(agent, console, role="agent", subject="agent.wu", name="Wu Lan")
        await agent.locator(f"[data-testid=complaint][data-id='{complaint_id}'] a").click()
        await agent.wait_for_url(f"{console}/complaints/{complaint_id}")
        status = agent.get_by_test_id("status")
        await expect(status).to_have_text("new")

        await agent.get_by_role("button", name="Acknowledge").click()
        await expect(status).to_have_text("acknowledged")
        await agent.get_by_role("button", name="Start work").click()
        await expect(status).to_have_text("in progress")

        await expect(agent.get_by_test_id("limit")).to_have_text("200 CNY")
        offer = agent.get_by_role("form", name="Offer compensation")
        await offer.get_by_label("Amount").fill("150")
        await offer.get_by_label("Reason").fill("A week without a kettle")
        await offer.get_by_role("button", name="Offer compensation").click()
        await expect(agent.get_by_test_id("granted")).to_have_text("150.00 CNY")

        await offer.get_by_label("Amount").fill("300")
        await offer.get_by_label("Reason").fill("A replacement kettle")
        await offer.get_by_role("button", name="Offer compensation").click()
        await expect(agent.get_by_role("alert")).to_contain_text("a supervisor must approve it")
        await expect(agent.get_by_test_id("compensation").filter(has_text="300.00")).to_contain_text(
            "pending"
        )
        await expect(agent.get_by_test_id("granted")).to_have_text("150.00 CNY")

        async def resolve() -> None:
            form = agent.get_by_role("form", name="Resolve")
            await form.get_by_label("Summary").fill("Replaced the heating element.")
            await form.get_by_label("Root cause").select_option("product_defect")
            await form.get_by_role("button", name="Resolve").click()

        # The service's refusal reaches the person as it is, and nothing changes.
        await resolve()
        await expect(agent.get_by_role("alert")).to_contain_text("awaits approval")
        await expect(status).to_have_text("in progress")

        supervisor = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(supervisor, console, role="supervisor", subject="sup.zhang", name="Zhang Wei")
        await supervisor.get_by_role("link", name="Approvals").click()
        waiting = supervisor.get_by_test_id("pending").filter(has_text="A replacement kettle")
        await expect(waiting).to_contain_text("300.00 CNY")
        await kept(supervisor, "approvals.en.png")
        await waiting.get_by_role("button", name="Approve").click()
        await expect(
            supervisor.get_by_test_id("pending").filter(has_text="A replacement kettle")
        ).to_have_count(0)

        await supervisor.get_by_role("link", name="Management").click()
        await expect(supervisor.get_by_test_id("customers")).not_to_have_text("0")
        for chart in ("pareto", "migration", "trend", "sla", "tiers", "root_causes"):
            picture = supervisor.get_by_test_id(f"chart-{chart}")
            await expect(picture).to_be_visible()
            assert await picture.evaluate("image => image.complete && image.naturalWidth > 0"), chart
        await kept(supervisor, "management.en.png")

        await agent.reload()
        await expect(agent.get_by_test_id("granted")).to_have_text("450.00 CNY")
        await expect(agent.get_by_test_id("compensation").filter(has_text="300.00")).to_contain_text(
            "granted (sup.zhang)"
        )
        await resolve()
        await expect(status).to_have_text("resolved")
        await expect(agent.get_by_test_id("transition")).to_have_count(4)
        await kept(agent, "complaint.en.png")


async def test_an_agent_logs_a_signal_and_opens_a_complaint_whose_promise_follows_the_tier(
    system: System,
) -> None:
    headers = auth(Role.agent, subject="agent.he")
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers",
            json={"name": "Sun Li", "phone": "+8613700001111"},
            headers=headers,
        )
        assert customer.status_code == 201, customer.text
    customer_id = customer.json()["id"]
    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        page = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(page, console, role="agent", subject="agent.he", name="He Ping")
        await page.goto(f"{console}/customers?q=13700001111")
        await page.get_by_role("link", name="Sun Li").click()
        await page.wait_for_url(f"{console}/customers/{customer_id}")

        log = page.get_by_role("form", name="Log an interaction or a signal")
        await log.get_by_label("Channel").select_option("phone")
        await log.get_by_label("Kind", exact=True).select_option("signal")
        await log.get_by_label("Signal").select_option("usage_drop")
        await log.get_by_label("Outcome").fill("Uses the app far less")
        await log.get_by_role("button", name="Log it").click()
        await page.wait_for_url(f"{console}/customers/{customer_id}")
        await expect(page.locator("#interactions + ul")).to_contain_text("Uses the app far less")

        # A purchase makes the customer gold: the customer's screen and the complaint's promise follow.
        await opened_then_made_gold(
            page,
            console=console,
            customer_url=f"{system.url('customer')}/customers/{customer_id}",
            name="Sun Li",
            order_id="SO-9100",
            headers=headers,
        )


async def test_a_manager_sees_what_a_policy_would_do_then_puts_it_in_force(system: System) -> None:
    """Last in the module: it changes the policy the module's system runs on."""
    headers = auth(Role.agent, subject="agent.ma")
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers", json={"name": "Ma Yun"}, headers=headers
        )
        customer_id = customer.json()["id"]
        bought = await client.post(
            f"{system.url('customer')}/customers/{customer_id}/purchases",
            json={"order_id": "SO-5500", "amount": "5000.00", "currency": "CNY"},
            headers=headers,
        )
        assert bought.status_code == 201, bought.text

        async def iron() -> None:
            segment = await client.get(
                f"{system.url('segmentation')}/segments/{customer_id}", headers=headers
            )
            assert segment.status_code == 200 and segment.json()["tier"] == "iron", segment.text

        await eventually(iron, timeout=60)

    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        page = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(page, console, role="manager", subject="mgr.qin", name="Qin Hao")
        await page.get_by_role("link", name="Policies").click()
        version = await page.get_by_test_id("segmentation-version").inner_text()
        document = page.get_by_label("The policy (JSON)")
        text = await document.input_value()
        assert '"min_monetary": "10000"' in text
        await document.fill(text.replace('"min_monetary": "10000"', '"min_monetary": "4000"', 1))
        await page.get_by_role("button", name="What would it do?").click()
        await expect(page.get_by_test_id("outcome")).to_be_visible()
        assert int(await page.get_by_test_id("changed-tier").inner_text()) >= 1
        # Nothing changed yet: the what-if writes nothing.
        await expect(page.get_by_test_id("segmentation-version")).to_have_text(version)
        await kept(page, "policies-what-if.en.png")

        await page.get_by_label("Why (kept with the version)").fill("Gold from 4,000 this season")
        await page.get_by_role("button", name="Store and put in force").click()
        await page.wait_for_url(f"{console}/policies")
        await expect(page.get_by_role("alert")).to_contain_text("is in force")
        await expect(page.get_by_test_id("segmentation-version")).not_to_have_text(version)

        async def gold_on_the_customers_screen() -> None:
            await page.goto(f"{console}/customers/{customer_id}")
            assert await page.get_by_test_id("tier").inner_text() == "gold"

        await eventually(gold_on_the_customers_screen, timeout=60, interval=0.5)


async def test_a_manager_reviews_and_applies_the_complaint_policy_and_tries_a_playbook_before_saving_it(
    system: System,
) -> None:
    """After the segmentation what-if: it changes the complaint policy and a playbook of the system."""
    headers = auth(Role.agent, subject="agent.lu")
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers",
            json={"name": "Lu Yan", "email": "lu.yan@example.com"},
            headers=headers,
        )
        assert customer.status_code == 201, customer.text
    customer_id = customer.json()["id"]
    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        agent = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(agent, console, role="agent", subject="agent.lu", name="Lu Min")
        await agent.get_by_role("link", name="Policies").click()
        # Readable by all, editable by managers only.
        await expect(agent.get_by_test_id("complaints-version")).to_be_visible()
        await expect(agent.get_by_label("The complaint policy (JSON)")).to_have_count(0)
        await expect(agent.get_by_test_id("playbook").filter(has_text="first_purchase_care")).to_be_visible()

        page = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(page, console, role="manager", subject="mgr.lin", name="Lin Tao")
        await page.get_by_role("link", name="Policies").click()
        version = await page.get_by_test_id("complaints-version").inner_text()
        policy = page.get_by_role("form", name="Complaint policy")
        document = policy.get_by_label("The complaint policy (JSON)")
        text = await document.input_value()
        assert '"warning_share": 0.75' in text
        await document.fill(text.replace('"warning_share": 0.75', '"warning_share": 0.6', 1))
        await policy.get_by_role("button", name="What does it change?").click()
        change = page.get_by_test_id("complaints-changes").get_by_test_id("change")
        await expect(change).to_have_count(1)
        await expect(change).to_contain_text("warning_share")
        await expect(change).to_contain_text("0.6")
        # Reviewing writes nothing.
        await expect(page.get_by_test_id("complaints-version")).to_have_text(version)
        await kept(page, "policies-complaints-review.en.png")
        await policy.get_by_role("button", name="Put it in force").click()
        applied = f"Complaint policy: version {int(version) + 1} is in force"
        await expect(page.get_by_role("alert")).to_contain_text(applied)
        await expect(page.get_by_test_id("complaints-version")).to_have_text(str(int(version) + 1))

        # A policy the service refuses: its reasons are shown, the candidate stays, and the version too.
        document = policy.get_by_label("The complaint policy (JSON)")
        text = await document.input_value()
        await document.fill(text.replace('"warning_share": 0.6', '"warning_share": 1.5', 1))
        await policy.get_by_role("button", name="What does it change?").click()
        await policy.get_by_role("button", name="Put it in force").click()
        await expect(page.get_by_role("alert")).to_contain_text("warning_share")
        await expect(policy.get_by_label("The complaint policy (JSON)")).to_have_value(
            re.compile(r'"warning_share": 1\.5')
        )
        await expect(page.get_by_test_id("complaints-version")).to_have_text(str(int(version) + 1))

        # Notify's follow-up policy, the same way.
        await page.goto(f"{console}/policies")
        follow_up_version = await page.get_by_test_id("follow_up-version").inner_text()
        follow_up = page.get_by_role("form", name="Follow-up policy (notify)")
        document = follow_up.get_by_label("The follow-up policy (JSON)")
        text = await document.input_value()
        assert '"unknown_customer_wait": "PT10M"' in text
        await document.fill(text.replace('"PT10M"', '"PT5M"', 1))
        await follow_up.get_by_role("button", name="What does it change?").click()
        await expect(page.get_by_test_id("follow_up-changes").get_by_test_id("change")).to_contain_text(
            "unknown_customer_wait"
        )
        await expect(page.get_by_test_id("follow_up-version")).to_have_text(follow_up_version)
        await follow_up.get_by_role("button", name="Put it in force").click()
        await expect(page.get_by_test_id("follow_up-version")).to_have_text(str(int(follow_up_version) + 1))

        await (
            page.get_by_test_id("playbook").filter(has_text="first_purchase_care").get_by_role("link").click()
        )
        await page.wait_for_url(f"{console}/policies/playbooks/first_purchase_care")
        playbook_version = await page.get_by_test_id("playbook-version").inner_text()
        definition = page.get_by_label("The playbook (JSON)")
        text = await definition.input_value()
        await definition.fill(text.replace('"id": "thanks"', '"id": "thank_you"', 1))
        await page.get_by_label("Customer id", exact=False).fill(customer_id)
        await page.get_by_label("Event type", exact=False).fill("csm.purchase.recorded.v1")
        await page.get_by_label("Event data", exact=False).fill(
            '{"purchase_id": "7d1b3c1e-0a53-4a0e-9a51-3d3f8d4c2b11", "order_id": "SO-3300",'
            ' "amount": "120.00", "currency": "CNY", "channel": "web",'
            ' "purchased_at": "2026-03-01T10:00:00+08:00", "item_count": 1, "first_purchase": true}'
        )
        await page.get_by_role("button", name="Try it (dry run)").click()
        outcome = page.get_by_test_id("dry-run")
        await expect(outcome.get_by_test_id("starts").first).to_have_text("starts")
        # The draft's step, not the one in force, and nothing saved yet.
        await expect(outcome.get_by_test_id("action").first).to_contain_text("thank_you")
        await expect(page.get_by_test_id("playbook-version")).to_have_text(playbook_version)
        await kept(page, "playbook-dry-run.en.png")
        await page.get_by_role("button", name="Save and put in force").click()
        await page.wait_for_url(f"{console}/policies/playbooks/first_purchase_care")
        await expect(page.get_by_role("alert")).to_contain_text("is in force")
        await expect(page.get_by_test_id("playbook-version")).not_to_have_text(playbook_version)
        await expect(page.get_by_label("The playbook (JSON)")).to_contain_text('"thank_you"')


async def test_an_agent_keeps_a_business_customers_contacts_and_records_a_consent(system: System) -> None:
    headers = auth(Role.agent, subject="agent.tan")
    async with httpx.AsyncClient(timeout=15) as client:
        customer = await client.post(
            f"{system.url('customer')}/customers",
            json={"name": "Hengda Trading", "kind": "business", "phone": "+8613600002222"},
            headers=headers,
        )
        assert customer.status_code == 201, customer.text
        customer_id = customer.json()["id"]
    console = f"http://127.0.0.1:{system.console_port}"
    async with chromium() as browser:
        page = await (await browser.new_context(locale="en-GB")).new_page()
        await sign_in(page, console, role="agent", subject="agent.tan", name="Tan Jie")
        await page.goto(f"{console}/customers/{customer_id}")

        await page.locator("summary", has_text="Add a contact").click()
        adding = page.get_by_role("form", name="Add a contact")
        await adding.get_by_label("Name").fill("Guo Ming")
        await adding.get_by_label("Role").select_option("purchasing")
        await adding.get_by_label("Phone").fill("+8613600003333")
        await adding.get_by_role("button", name="Add a contact").click()
        contact = page.get_by_test_id("contact").filter(has_text="Guo Ming")
        await expect(contact).to_contain_text("purchasing")
        await expect(contact).to_contain_text("+8613600003333")

        await contact.locator("summary").click()
        changing = page.get_by_role("form", name="Change: Guo Ming")
        await changing.get_by_label("Role").select_option("finance")
        await changing.get_by_label("Phone").fill("")
        await changing.get_by_label("E-mail", exact=False).fill("guo.ming@hengda.example")
        await changing.get_by_role("button", name="Save the contact").click()
        contact = page.get_by_test_id("contact").filter(has_text="Guo Ming")
        await expect(contact).to_contain_text("finance")
        await expect(contact).to_contain_text("guo.ming@hengda.example")
        await expect(contact).not_to_contain_text("+8613600003333")

        consents = page.get_by_role("form", name="Record their word")
        await consents.get_by_label("Channel").select_option("sms")
        await consents.get_by_label("Purpose").select_option("marketing")
        await consents.get_by_label("Agreed").select_option("false")
        await consents.get_by_label("Where they said so").fill("phone call")
        await consents.get_by_role("button", name="Record their word").click()
        consent = page.locator("[data-testid=consent][data-channel=sms][data-purpose=marketing]")
        await expect(consent.locator("td").nth(1)).to_have_text("no")
        await expect(consent).to_contain_text("phone call")
        await kept(page, "customer-contacts.en.png")

        await page.get_by_test_id("contact").filter(has_text="Guo Ming").locator("summary").click()
        await page.get_by_role("button", name="Remove the contact").click()
        await expect(page.get_by_test_id("contact").filter(has_text="Guo Ming")).to_have_count(0)

    async with httpx.AsyncClient(timeout=15) as client:
        recorded = await client.get(
            f"{system.url('customer')}/customers/{customer_id}/consents", headers=headers
        )
    [sms] = [c for c in recorded.json() if (c["channel"], c["purpose"]) == ("sms", "marketing")]
    assert sms["granted"] is False and sms["source"] == "phone call"
