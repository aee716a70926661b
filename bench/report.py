"""Latency statistics and a uniform report: each figure beside its baseline and their ratio."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def percentile(samples: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of ``samples``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    goal: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


@dataclass
class Report:
    benchmark: str
    parameters: dict[str, object]
    figures: list[Figure] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def render(self) -> str:
        lines = [
            f"# {self.benchmark}",
            "",
            "parameters: " + ", ".join(f"{k}={v}" for k, v in self.parameters.items()),
            f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "",
            "| figure | value | baseline (same run) | ratio | goal |",
            "|---|---|---|---|---|",
        ]
        for f in self.figures:
            baseline = f"{f.baseline:,.2f} {f.unit} ({f.baseline_name})" if f.baseline is not None else "—"
            ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "—"
            lines.append(f"| {f.name} | {f.value:,.2f} {f.unit} | {baseline} | {ratio} | {f.goal or ''} |")
        return "\n".join(lines)

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        payload = {**asdict(self), "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures]}
        path.write_text(json.dumps(payload, indent=2))
        return path
