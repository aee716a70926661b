"""The BG/NBD fit recovers known parameters and matches Fader, Hardie & Lee (2005) on the CDNOW sample."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from services.segmentation import bgnbd


def cdnow_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CDNOW sample (2,357 customers, weeks) in the `lifetimes` wheel; its code is not imported."""
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "cdnow_customers_summary.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))  # type: ignore[return-value]


def test_the_cdnow_fit_matches_the_published_estimates() -> None:
    x, t_x, T = cdnow_summary()
    assert len(x) == 2357
    fit = bgnbd.fit(x, t_x, T)
    p = fit.parameters
    # Published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; LL = -9582.4.
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    # The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next 39 weeks.
    assert bgnbd.expected_purchases(p, 2, 30.43, 38.86, 39) == pytest.approx(1.226, abs=0.001)


def test_the_fit_recovers_the_parameters_it_was_simulated_with() -> None:
    truth = bgnbd.BgNbdParameters(r=0.5, alpha=6.0, a=0.7, b=3.0)
    x, t_x, T = bgnbd.simulate(truth, 4000, 52.0, np.random.default_rng(2005))
    fit = bgnbd.fit(x, t_x, T)
    assert fit.standard_errors is not None
    for name in ("r", "alpha", "a", "b"):
        estimate, error = getattr(fit.parameters, name), getattr(fit.standard_errors, name)
        assert abs(estimate - getattr(truth, name)) < 3 * error, (name, estimate, error)


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    p = bgnbd.BgNbdParameters(0.243, 4.414, 0.793, 2.426)
    assert bgnbd.probability_alive(p, 0, 0, 30) == 1.0
    recent, silent = bgnbd.probability_alive(p, 3, 29, 30), bgnbd.probability_alive(p, 3, 5, 30)
    assert 0 < silent < recent < 1
    many = bgnbd.probabilities_alive(
        p, np.array([0.0, 3, 3]), np.array([0.0, 29, 5]), np.array([30.0, 30, 30])
    )
    assert many == pytest.approx([1.0, recent, silent])


def test_impossible_histories_are_refused() -> None:
    with pytest.raises(ValueError):
        bgnbd.fit([1], [5], [3])
