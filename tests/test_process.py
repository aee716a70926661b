"""What ``csm serve`` sets for its process before it serves: the cyclic collector's threshold."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from services import cli
from shared.process import tune_gc
from shared.settings import CommonSettings


@pytest.fixture(autouse=True)
def thresholds_put_back() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_waits_for_the_threshold_and_the_older_ones_keep_their_ratios() -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (50_000, 10, 10), "0 leaves the threshold as it is"


def test_a_service_process_collects_after_fifty_thousand_objects_by_default() -> None:
    assert CommonSettings().gc_young_threshold == 50_000


@pytest.mark.parametrize(("setting", "expected"), [("12345", 12_345), ("0", 700)])
def test_serve_tunes_the_collector_from_the_setting_before_it_serves(
    setting: str, expected: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("CSM_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CSM_GC_YOUNG_THRESHOLD", setting)
    monkeypatch.delenv("CSM_SEGMENTATION_DATABASE_URL", raising=False)
    monkeypatch.setenv("CSM_SEGMENTATION_CONSUMER_PROCESSES", "1")
    served: list[int] = []

    def run(*_args: Any, **_kwargs: Any) -> None:  # instead of the server: what the process had set
        served.append(gc.get_threshold()[0])

    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(cli.app, ["serve", "segmentation"])
    assert result.exit_code == 0, result.output
    assert served == [expected]
