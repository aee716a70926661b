from tests.notify.fixtures import http_receiver, mailbox, notify

__all__ = ["http_receiver", "mailbox", "notify"]
