"""The models that can doubt a one-time buyer: MBG/NBD and Pareto/NBD, and the evidence for the default.

Published reference: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", report
the Pareto/NBD on the CDNOW sample as r = 0.553, α = 10.578, s = 0.606, β = 11.669, LL = -9595.0.
The data ships in the `lifetimes` wheel; its code is not imported.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.segmentation import btyd, mbgnbd, pareto_nbd
from services.segmentation.bgnbd import BgNbdParameters
from services.segmentation.btyd import BuyingModel
from services.segmentation.mbgnbd import MbgNbdParameters
from services.segmentation.pareto_nbd import ParetoNbdParameters
from services.segmentation.policy import DEFAULT_POLICY, Policy

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


def cdnow_summary() -> Arrays:
    """The calibration summary FHL fitted (weeks 1-39; x counts repeat purchase days)."""
    with (_datasets() / "cdnow_customers_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))  # type: ignore[return-value]


def cdnow_transactions() -> dict[str, list[date]]:
    """Each customer's orders (several a day are possible) from the same sample."""
    orders: dict[str, list[date]] = defaultdict(list)
    for line in (_datasets() / "CDNOW_sample.txt").read_text().splitlines():
        fields = line.split()
        day = fields[2]
        orders[fields[1]].append(date(int(day[:4]), int(day[4:6]), int(day[6:])))
    return orders


CALIBRATION_END, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)


def calibration_and_holdout() -> tuple[Arrays, np.ndarray, int]:
    """(x, t_x, T) in weeks over purchase days up to the calibration end, holdout purchase days, and
    the repeat orders counted the naive way (one per order, not per day)."""
    orders = cdnow_transactions()
    x, t_x, T, holdout, naive = [], [], [], [], 0
    for customer in sorted(orders, key=int):
        days = sorted(set(orders[customer]))
        calibration = [d for d in days if d <= CALIBRATION_END]
        x.append(len(calibration) - 1)
        t_x.append((calibration[-1] - days[0]).days / 7)
        T.append((CALIBRATION_END - days[0]).days / 7)
        holdout.append(sum(CALIBRATION_END < d <= HOLDOUT_END for d in days))
        naive += sum(d <= CALIBRATION_END for d in orders[customer]) - 1
    return (np.array(x, float), np.array(t_x), np.array(T)), np.array(holdout, float), naive


def test_the_pareto_nbd_fit_on_cdnow_matches_the_published_estimates() -> None:
    x, t_x, T = cdnow_summary()
    fit = pareto_nbd.fit(x, t_x, T)
    p = fit.parameters
    assert (round(p.r, 3), round(p.alpha, 3), round(p.s, 3)) == (0.553, 10.578, 0.606)
    # β is the least determined of the four (standard error about 6): the paper's 11.669 to 0.01.
    assert p.beta == pytest.approx(11.669, abs=0.01)
    assert round(fit.log_likelihood, 1) == -9595.0
    assert fit.converged


def test_the_summary_fhl_fitted_counts_purchase_days_not_orders() -> None:
    (x, t_x, T), _, naive = calibration_and_holdout()
    published_x, published_t_x, published_T = cdnow_summary()
    assert np.array_equal(x, published_x)
    assert np.allclose(t_x, published_t_x, atol=0.005) and np.allclose(T, published_T, atol=0.005)
    assert naive > x.sum()  # counting orders would have given other (wrong) inputs


def test_the_default_model_predicts_the_cdnow_holdout_best() -> None:
    """The evidence for the default, recomputed: error against the holdout and the calibration of P(alive)."""
    (x, t_x, T), holdout, _ = calibration_and_holdout()
    figures = {}
    for model in BuyingModel:
        p = btyd.fit(model, x, t_x, T).parameters
        expected = btyd.expected_purchases_many(p, x, t_x, T, 39.0)
        alive = btyd.probabilities_alive(p, x, t_x, T)
        figures[model] = (
            float(np.abs(expected - holdout).mean()),
            float(np.sqrt(((expected - holdout) ** 2).mean())),
            float(((alive - (holdout > 0)) ** 2).mean()),
            float(expected.sum()),
        )
    assert holdout.sum() == 1882
    best = btyd.DEFAULT_MODEL
    for mae, rmse, brier, _ in figures.values():
        assert figures[best][0] <= mae and figures[best][1] <= rmse and figures[best][2] <= brier, figures
    # The figures the module docstring reports.
    assert [round(figures[m][0], 4) for m in BuyingModel] == [0.7855, 0.7648, 0.7545]
    assert [round(figures[m][2], 4) for m in BuyingModel] == [0.6083, 0.2057, 0.1938]
    assert [round(figures[m][3], 1) for m in BuyingModel] == [1653.4, 1576.7, 1665.5]


def test_one_time_buyers_are_not_all_alive_and_fade_with_silence() -> None:
    for params in (
        MbgNbdParameters(0.525, 6.183, 0.891, 1.614),
        ParetoNbdParameters(0.553, 10.578, 0.606, 11.669),
    ):
        recent, older, oldest = (btyd.probability_alive(params, 0, 0, weeks) for weeks in (1, 30, 80))
        assert 1 > recent > older > oldest > 0, params
        assert btyd.probability_alive(params, 3, 29, 30) > btyd.probability_alive(params, 3, 5, 30)
    assert btyd.probability_alive(BgNbdParameters(0.243, 4.414, 0.793, 2.426), 0, 0, 80) == 1.0


def test_mbgnbd_by_hand() -> None:
    # r = α = a = b = 1, one purchase at 0, watched for one unit:
    # P(alive) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)) = 1 / (1 + 1 · 2) = 1/3.
    ones = MbgNbdParameters(1.0, 1.0, 1.0, 1.0)
    assert mbgnbd.probability_alive(ones, 0, 0, 1) == pytest.approx(1 / 3)
    # Likelihood of that customer: b/(a+b) · (α/(α+T))^r + a/(a+b) = 1/2 · 1/2 + 1/2 = 3/4.
    assert mbgnbd.log_likelihood(ones.as_array(), np.array([0.0]), np.array([0.0]), np.array([1.0])) == (
        pytest.approx(math.log(0.75))
    )
    # a = 2: P(alive) = 1/(1 + 2·2) = 1/5; over the next unit, with 2F1(1, 2; 3; z) = -2(z + ln(1-z))/z²
    # at z = t/(α+T+t) = 1/3: E = (a+b+x)/(a-1) · (1 - (α+T)/(α+T+t) · 2F1) · P(alive).
    p = MbgNbdParameters(1.0, 1.0, 2.0, 1.0)
    z = 1 / 3
    hyper = -2 * (z + math.log(1 - z)) / z**2
    assert mbgnbd.probability_alive(p, 0, 0, 1) == pytest.approx(1 / 5)
    assert mbgnbd.expected_purchases(p, 0, 0, 1, 1) == pytest.approx(3 * (1 - 2 / 3 * hyper) / 5)


def test_pareto_nbd_by_hand() -> None:
    # With α = β the hypergeometric terms are 1, so A₀ = (α+t_x)^-(r+s+x) - (α+T)^-(r+s+x).
    # r = α = s = β = 1, x = 0, T = 1: A₀ = 1 - 1/4 = 3/4, and
    # P(alive) = 1 / (1 + s/(r+s+x) · (α+T)^(r+x) · (β+T)^s · A₀) = 1 / (1 + 1/2 · 2 · 2 · 3/4) = 0.4.
    ones = ParetoNbdParameters(1.0, 1.0, 1.0, 1.0)
    assert pareto_nbd.probability_alive(ones, 0, 0, 1) == pytest.approx(0.4)
    # Its likelihood: α^r β^s [(α+T)^-(r+x) (β+T)^-s + s/(r+s+x) A₀] = 1/4 + 3/8.
    assert pareto_nbd.log_likelihood(ones.as_array(), np.array([0.0]), np.array([0.0]), np.array([1.0])) == (
        pytest.approx(math.log(5 / 8))
    )
    # s = 2: A₀ = 1 - 1/8, odds = 2/3 · 2 · 4 · 7/8 = 14/3, P(alive) = 3/17; over t = 2:
    # E = (r+x)(β+T)/((α+T)(s-1)) · (1 - ((β+T)/(β+T+t))^(s-1)) · P(alive) = 1 · 1/2 · 3/17.
    p = ParetoNbdParameters(1.0, 1.0, 2.0, 1.0)
    assert pareto_nbd.probability_alive(p, 0, 0, 1) == pytest.approx(3 / 17)
    assert pareto_nbd.expected_purchases(p, 0, 0, 1, 2) == pytest.approx(3 / 34)
    # A customer whose last purchase is now is alive for certain (A₀ = 0).
    assert pareto_nbd.probability_alive(p, 4, 10, 10) == 1.0


@pytest.mark.parametrize(
    ("simulate", "fit", "truth"),
    [
        (mbgnbd.simulate, mbgnbd.fit, MbgNbdParameters(0.5, 6.0, 0.7, 3.0)),
        (pareto_nbd.simulate, pareto_nbd.fit, ParetoNbdParameters(0.5, 6.0, 0.8, 10.0)),
    ],
)
def test_the_fit_recovers_the_parameters_it_was_simulated_with(simulate, fit, truth) -> None:  # type: ignore[no-untyped-def]
    x, t_x, T = simulate(truth, 4000, 52.0, np.random.default_rng(1987))
    result = fit(x, t_x, T)
    assert result.standard_errors is not None
    for name in truth.__dataclass_fields__:
        estimate, error = getattr(result.parameters, name), getattr(result.standard_errors, name)
        assert abs(estimate - getattr(truth, name)) < 3 * error, (name, estimate, error)


def test_a_stored_fit_names_its_model_and_an_old_one_is_a_bgnbd_fit() -> None:
    x, t_x, T = cdnow_summary()
    for model in BuyingModel:
        result = btyd.fit(model, x, t_x, T)
        stored = btyd.document(result)
        assert stored is not None and stored["model"] == model.value
        assert btyd.parameters_of(stored) == result.parameters
    old = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
    assert btyd.parameters_of(old) == BgNbdParameters(0.243, 4.414, 0.793, 2.426)
    assert btyd.parameters_of(None) is None


def test_the_model_is_a_policy_choice_and_old_policies_stay_valid() -> None:
    assert DEFAULT_POLICY.bgnbd.model is btyd.DEFAULT_MODEL is BuyingModel.pareto_nbd
    stored = DEFAULT_POLICY.model_dump(mode="json")
    del stored["bgnbd"]["model"]  # as a policy saved before the choice existed
    assert Policy.model_validate(stored).bgnbd.model is BuyingModel.pareto_nbd
    stored["bgnbd"]["model"] = "mbgnbd"
    assert Policy.model_validate(stored).bgnbd.model is BuyingModel.mbgnbd
