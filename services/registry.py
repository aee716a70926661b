"""The four services: where their app factories and settings are."""

from __future__ import annotations

from dataclasses import dataclass

from services.complaints.settings import ComplaintsSettings
from services.customer.settings import CustomerSettings
from services.notify.settings import NotifySettings
from services.segmentation.settings import SegmentationSettings
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    factory: str
    settings: type[ServiceSettings]


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("customer", "services.customer.app:create_app", CustomerSettings),
        ServiceEntry("segmentation", "services.segmentation.app:create_app", SegmentationSettings),
        ServiceEntry("complaints", "services.complaints.app:create_app", ComplaintsSettings),
        ServiceEntry("notify", "services.notify.app:create_app", NotifySettings),
    )
}
