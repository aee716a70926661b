"""The ways a request to customer can fail, each with its status and problem type."""

from __future__ import annotations

import uuid
from decimal import Decimal

from shared.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable


class CustomerNotFound(NotFound):
    """No such customer, or one that was erased."""

    slug = "customer-not-found"

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(f"No customer {customer_id}.")


class CustomerMerged(NotFound):
    """The customer was folded into another; ``merged_into`` says which, to follow."""

    slug = "customer-merged"

    def __init__(self, customer_id: uuid.UUID, merged_into: uuid.UUID | None) -> None:
        super().__init__(
            f"Customer {customer_id} was merged into {merged_into}.", merged_into=str(merged_into)
        )


class ExternalIdTaken(Conflict):
    slug = "external-id-taken"

    def __init__(self, external_id: str, customer_id: uuid.UUID) -> None:
        super().__init__(
            f"External id {external_id} is already customer {customer_id}.", customer_id=str(customer_id)
        )


class ContactNotFound(NotFound):
    slug = "contact-not-found"

    def __init__(self, customer_id: uuid.UUID, contact_id: uuid.UUID) -> None:
        super().__init__(f"Customer {customer_id} has no contact {contact_id}.")


class AttachmentNotFound(NotFound):
    slug = "attachment-not-found"

    def __init__(self, customer_id: uuid.UUID, attachment_id: uuid.UUID) -> None:
        super().__init__(f"Customer {customer_id} has no attachment {attachment_id}.")


class NotAnOrganisation(Conflict):
    """Named contacts belong to business and retailer customers, not to individuals."""

    slug = "not-an-organisation"

    def __init__(self) -> None:
        super().__init__(
            "Named contacts are kept for business and retailer customers; this one is an individual."
        )


class PurchaseNotFound(NotFound):
    slug = "purchase-not-found"

    def __init__(self, customer_id: uuid.UUID, purchase_id: uuid.UUID) -> None:
        super().__init__(f"Customer {customer_id} has no purchase {purchase_id}.")


class OrderRecordedDifferently(Conflict):
    """The order id is known, with another customer or amount: a retry must repeat the original."""

    slug = "order-recorded-differently"

    def __init__(self, order_id: str, purchase_id: uuid.UUID) -> None:
        super().__init__(
            f"Order {order_id} is already recorded with a different customer or amount.",
            purchase_id=str(purchase_id),
        )


class RefundRecordedDifferently(Conflict):
    slug = "refund-recorded-differently"

    def __init__(self, reference: str) -> None:
        super().__init__(f"Refund {reference} is already recorded with a different amount.")


class RefundExceedsPayment(Unprocessable):
    """More would be refunded than was paid; ``paid`` and ``refunded`` say how much room is left."""

    slug = "refund-exceeds-payment"

    def __init__(self, detail: str, *, paid: str, refunded: str) -> None:
        super().__init__(detail, field="amount", paid=paid, refunded=refunded)


class MergeIntoItself(Unprocessable):
    slug = "merge-into-itself"

    def __init__(self) -> None:
        super().__init__("A customer cannot be merged into itself.", field="duplicate_id")


class ImportNotFound(NotFound):
    slug = "import-not-found"

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"No import {job_id}.")


class ImportTooLarge(Problem):
    status, title, slug = 413, "Content too large", "content-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"An import file may be at most {limit} bytes.")


class NotCsv(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"

    def __init__(self) -> None:
        super().__init__("Send the file as text/csv.")


class AccountManagerNeedsSupervisor(Forbidden):
    slug = "account-manager-needs-supervisor"

    def __init__(self) -> None:
        super().__init__("Naming a customer's account manager takes a supervisor or above.")


class LargeManualPurchase(Forbidden):
    slug = "large-manual-purchase"

    def __init__(self, limit: Decimal, currency: str) -> None:
        super().__init__(
            f"A purchase over {limit} {currency} recorded by hand takes a manager; "
            "systems that record sales use a service token."
        )


class NoExchangeRate(Unprocessable):
    """A purchase in a currency with no rate to the reporting currency in force when it happened."""

    slug = "no-exchange-rate"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"{reason}; an admin or a manager adds one at POST /exchange-rates.", field="currency"
        )


class ExchangeRateStated(Conflict):
    """A rate from that moment is already stated, at another value: rates are history, add a later one."""

    slug = "exchange-rate-stated"

    def __init__(self, currency: str, effective_from: str, rate: str) -> None:
        super().__init__(
            f"The {currency} rate from {effective_from} is already {rate}; "
            "state a new one from a later moment.",
            rate=rate,
        )
