"""Pictures for people: the Pareto curve and the tier migration matrix (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def _render(figure: Figure, image_format: str) -> bytes:
    # A Figure with the Agg canvas: no pyplot, no global state, safe in a server.
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, bbox_inches="tight")
    return buffer.getvalue()


def pareto_chart(
    curve: Sequence[tuple[float, float]],
    *,
    top_share: float,
    top_revenue: float | None,
    image_format: str = "png",
) -> bytes:
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    if curve:
        axes.plot(
            [100 * c for c, _ in curve],
            [100 * r for _, r in curve],
            color="#b8860b",
            linewidth=2,
            label="customers, biggest spender first",
        )
    axes.plot([0, 100], [0, 100], color="grey", linestyle=":", label="everyone equal")
    if top_revenue is not None:
        axes.axvline(100 * top_share, color="#555555", linestyle="--", linewidth=1)
        axes.annotate(
            f"top {100 * top_share:.0f}% bring {100 * top_revenue:.0f}% of revenue",
            (100 * top_share, 100 * top_revenue),
            xytext=(100 * top_share + 5, 100 * top_revenue - 15),
            arrowprops={"arrowstyle": "->"},
        )
    axes.set_xlabel("share of customers (%)")
    axes.set_ylabel("share of revenue (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 100)
    axes.set_title("Pareto curve")
    axes.legend(loc="lower right")
    return _render(figure, image_format)


def migration_chart(matrix: dict[str, dict[str, int]], *, title: str, image_format: str = "png") -> bytes:
    rows = list(matrix)
    columns = list(next(iter(matrix.values()))) if matrix else []
    values = [[matrix[r][c] for c in columns] for r in rows]
    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(columns)), labels=columns)
    axes.set_yticks(range(len(rows)), labels=rows)
    axes.set_xlabel("tier at end")
    axes.set_ylabel("tier at start")
    peak = max((max(row) for row in values), default=0)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            axes.text(
                j,
                i,
                f"{value:,}",
                ha="center",
                va="center",
                color="white" if peak and value > peak / 2 else "black",
            )
    figure.colorbar(image, ax=axes, label="customers")
    axes.set_title(title)
    return _render(figure, image_format)
