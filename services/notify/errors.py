"""The ways a request to notify can fail, each with its status and problem type."""

from __future__ import annotations

import uuid

from shared.problems import Conflict, Forbidden, NotFound, Unprocessable


class PlaybookNotFound(NotFound):
    slug = "playbook-not-found"

    def __init__(self, key: str) -> None:
        super().__init__(f"No playbook {key}.")


class AnnouncementNotFound(NotFound):
    slug = "announcement-not-found"

    def __init__(self) -> None:
        super().__init__("No such announcement.")


class NotificationNotFound(NotFound):
    slug = "notification-not-found"

    def __init__(self) -> None:
        super().__init__("No such notification.")


class WebhookNotFound(NotFound):
    slug = "webhook-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"No webhook named {name}.")


class WebhookNameTaken(Conflict):
    slug = "webhook-name-taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"Someone registered the webhook {name} at the same moment; read it and try again.")


class TaskNotFound(NotFound):
    slug = "task-not-found"

    def __init__(self) -> None:
        super().__init__("No such task.")


class TaskDone(Conflict):
    slug = "task-done"

    def __init__(self) -> None:
        super().__init__("The task is done already.")


class TaskClaimed(Conflict):
    slug = "task-claimed"

    def __init__(self, claimed_by: str | None) -> None:
        super().__init__(f"The task is claimed by {claimed_by}.", claimed_by=claimed_by)


class NotYourTask(Forbidden):
    slug = "not-your-task"

    def __init__(self) -> None:
        super().__init__("This task is for someone else.")


class NotAnAnnouncementPlaybook(Unprocessable):
    slug = "not-an-announcement-playbook"

    def __init__(self, playbook: str) -> None:
        super().__init__(f"{playbook!r} is not a playbook started by announcements.", field="playbook")


class PlaybookDisabled(Unprocessable):
    slug = "playbook-disabled"

    def __init__(self, playbook: str) -> None:
        super().__init__(f"The playbook {playbook!r} is disabled.", field="playbook")


class WebhookTargetRefused(Unprocessable):
    slug = "webhook-target-refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Webhooks may not point there: {reason}.", field="url")


class CustomerNotKnown(NotFound):
    slug = "customer-not-known"

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(
            f"notify has heard nothing of customer {customer_id} (yet): no preferences are kept for an id "
            "that names nobody."
        )
