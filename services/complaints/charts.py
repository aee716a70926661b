"""The analytics as SVG charts for people (pygal), drawn from the same figures as the JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pygal
from pygal.style import Style

# No external scripts: the charts must open offline, like the docs pages.
_STYLE = Style(background="white", plot_background="white", font_family="sans-serif")
_COMMON: dict[str, Any] = {"js": [], "style": _STYLE, "width": 800, "height": 420, "legend_at_bottom": True}


class Chart(StrEnum):
    trend = "trend"
    categories = "categories"
    channels = "channels"
    tiers = "tiers"
    sla = "sla"
    times = "times"
    root_causes = "root_causes"


_BREAKDOWNS = {
    Chart.categories: ("by_category", "category"),
    Chart.channels: ("by_channel", "channel"),
    Chart.tiers: ("by_tier", "tier"),
}


def render(chart: Chart, figures: dict[str, Any]) -> bytes:
    volume = figures["volume"]
    if chart is Chart.trend:
        drawing = pygal.StackedBar(
            title=f"Complaints per {volume['trend']['bucket']}", x_label_rotation=30, **_COMMON
        )
        points = volume["trend"]["points"]
        drawing.x_labels = [point["start"] for point in points]
        for category in volume["by_category"]:
            drawing.add(category, [point["by_category"].get(category, 0) for point in points])
        if not volume["by_category"]:
            drawing.add("complaints", [0 for _ in points])
    elif chart in _BREAKDOWNS:
        key, noun = _BREAKDOWNS[chart]
        drawing = pygal.HorizontalBar(title=f"Complaints by {noun}", **_COMMON)
        for name, count in volume[key].items():
            drawing.add(name, count)
    elif chart is Chart.sla:
        drawing = pygal.Bar(title="SLA promises kept (%)", range=(0, 100), **_COMMON)
        for target, figure in figures["sla_attainment"]["by_target"].items():
            drawing.add(target, None if figure["rate"] is None else round(100 * figure["rate"], 1))
    elif chart is Chart.times:
        drawing = pygal.Bar(title="Hours to first response and to resolution", **_COMMON)
        drawing.x_labels = ["first response", "resolution"]
        for statistic, key in (("median", "median_hours"), ("90th percentile", "p90_hours")):
            drawing.add(statistic, [figures["first_response_time"][key], figures["resolution_time"][key]])
    else:
        drawing = pygal.HorizontalBar(title="Recurring root causes", **_COMMON)
        for cause in figures["root_causes"]:
            drawing.add(cause["root_cause"], cause["count"])
    rendered: bytes = drawing.render()
    return rendered
