"""Delayed steps live in the database: a care call due in a week comes after notify restarted."""

from __future__ import annotations

from datetime import timedelta

from shared.clock import ManualClock
from tests.harness import Databases, Stack, eventually, stack_of
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.notify.support import START, event, start_notify


async def test_a_delayed_step_is_taken_by_the_next_process_after_a_restart(
    stack: Stack, databases: Databases, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    first = await start_notify(stack, mailbox, http_receiver)
    customer = await first.register(account_manager="am-9")
    await first.consumed(
        *await first.publish(event("csm.purchase.recorded.v1", customer, first_purchase=True))
    )
    await first.settled(customer, 1)
    database_url = first.service.database_url
    await stack.close()  # the process is gone; the waiting run is only in the database

    async with stack_of(stack.bootstrap, databases) as after:
        second = await start_notify(
            after,
            mailbox,
            http_receiver,
            clock=ManualClock(START + timedelta(days=7)),
            database_url=database_url,
        )

        async def care_call() -> None:
            tasks = await second.tasks(customer)
            assert [(t.kind, t.assignee) for t in tasks] == [("care_call", "am-9")]

        await eventually(care_call)
