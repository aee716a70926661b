"""The ways a request to segmentation can fail, each with its status and problem type."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.problems import NotFound, Unprocessable


class SegmentNotFound(NotFound):
    """Segmentation has heard nothing of this customer yet (or it was erased)."""

    slug = "segment-not-found"

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(f"No segment for customer {customer_id}: no event about them has arrived yet.")


class PolicyVersionNotFound(NotFound):
    slug = "policy-version-not-found"

    def __init__(self, version: int) -> None:
        super().__init__(f"There is no policy version {version}.")


class CutPointsNotFound(NotFound):
    """No cut points of that version, or none at all before the batch has run once."""

    slug = "cut-points-not-found"

    def __init__(self, version: int | None = None) -> None:
        super().__init__(
            "No cut points yet: the batch has not run."
            if version is None
            else f"There are no cut points version {version}."
        )


class AnalysisDateInFuture(Unprocessable):
    """Figures as of a moment that has not come yet would count purchases that have not happened."""

    slug = "analysis-date-in-future"

    def __init__(self, as_of: datetime, now: datetime, skew_seconds: int) -> None:
        super().__init__(
            f"as_of {as_of.isoformat()} is in the future: an analysis date may be at most "
            f"{skew_seconds} seconds past the clock ({now.isoformat()}).",
            field="as_of",
            location="query",
        )
