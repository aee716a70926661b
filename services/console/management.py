"""Management: the tier pyramid, and the charts the services draw (Pareto curve, tier migration, complaint
trends and SLA attainment), shown as the signed-in person may see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.console.backends import Backends, Service
from services.console.session import SignedIn
from services.console.views import render
from shared.events.segmentation import TIER_ORDER

router = APIRouter()

# The charts the console shows: name -> the service that draws it, its path and what it asks for.
CHARTS: dict[str, tuple[Service, str, dict[str, str]]] = {
    "pareto": ("segmentation", "/analytics/pareto/chart", {"image_format": "svg"}),
    "migration": ("segmentation", "/analytics/migration/chart", {"image_format": "svg"}),
    "trend": ("complaints", "/complaints-analytics/trend.svg", {}),
    "sla": ("complaints", "/complaints-analytics/sla.svg", {}),
    "tiers": ("complaints", "/complaints-analytics/tiers.svg", {}),
    "root_causes": ("complaints", "/complaints-analytics/root_causes.svg", {}),
}

# The migration matrix compares today with this long ago.
MIGRATION_WINDOW = timedelta(days=30)


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


@router.get("/management", response_class=HTMLResponse)
async def management(request: Request, person: SignedIn) -> Response:
    distribution: dict[str, Any] = await _backends(request).get(
        person, "segmentation", "/analytics/distribution"
    )
    customers = distribution["customers"] or 1
    pyramid = [{"tier": tier.value, "count": distribution["tier"].get(tier.value, 0)} for tier in TIER_ORDER]
    return render(
        request,
        "management.html",
        distribution=distribution,
        pyramid=[{**row, "share": row["count"] / customers} for row in pyramid],
        charts=list(CHARTS),
    )


@router.get("/charts/{name}.svg")
async def chart(
    request: Request, person: SignedIn, name: Annotated[str, Path(pattern="^[a-z_]+$")]
) -> Response:
    if name not in CHARTS:
        return Response(status_code=404)
    service, path, params = CHARTS[name]
    if name == "migration":
        end = datetime.now(UTC)
        params = {**params, "start": (end - MIGRATION_WINDOW).isoformat(), "end": end.isoformat()}
    picture, media_type = await _backends(request).picture(person, service, path, **params)
    # A picture of the person's data: kept by no cache, and never run as a document.
    return Response(picture, media_type=media_type, headers={"content-security-policy": "default-src 'none'"})
