"""Fixtures for notify's tests: real receivers, and notify running against them.

Test modules outside tests/notify import them by name (pytest finds fixtures in a module's namespace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.harness import Stack
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.notify.support import Notify, start_notify


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    running = Mailbox().start()
    yield running
    running.stop()


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    running = await HttpReceiver().start()
    yield running
    await running.stop()


@pytest.fixture
async def notify(stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver) -> Notify:
    return await start_notify(stack, mailbox, http_receiver)
