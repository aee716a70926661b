"""The BG/NBD model ("buy till you die") of Fader, Hardie & Lee (2005).

While alive, a customer buys as a Poisson process of rate λ ~ Gamma(r, α); after each purchase
they drop out with probability p ~ Beta(a, b). From a customer's repeat purchases ``x``, the time
of the last of them ``t_x`` and their age ``T`` (all since their first purchase) the model gives
the probability they are still alive and how many purchases to expect in a coming period.
Formulas: equations (3), (10) and (13) of "Counting Your Customers the Easy Way: An Alternative
to the Pareto/NBD Model", Marketing Science 24(2), 2005.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from services.segmentation import likelihood

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float

    def as_array(self) -> Floats:
        return np.array([self.r, self.alpha, self.a, self.b])


@dataclass(frozen=True)
class BgNbdFit:
    parameters: BgNbdParameters
    log_likelihood: float
    customers: int
    converged: bool
    standard_errors: BgNbdParameters | None


def _log_terms(params: Floats, x: Floats, t_x: Floats, T: Floats) -> tuple[Floats, Floats]:
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    alive = special.betaln(a, b + x) - beta_ab + common - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        died = np.where(
            x > 0,
            special.betaln(a + 1, np.maximum(b + x - 1, 1e-300))
            - beta_ab
            + common
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return alive, died


def log_likelihood(params: Floats, x: Floats, t_x: Floats, T: Floats, weights: Floats | None = None) -> float:
    """The sample log-likelihood (equation 3 summed over customers)."""
    alive, died = _log_terms(np.asarray(params, dtype=float), x, t_x, T)
    per_customer = np.logaddexp(alive, died)
    return float(np.sum(per_customer if weights is None else per_customer * weights))


def fit(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, *, initial: BgNbdParameters | None = None
) -> BgNbdFit:
    """Maximum-likelihood estimates of (r, α, a, b), with standard errors from the observed information."""
    start = (initial or BgNbdParameters(1.0, 1.0, 1.0, 1.0)).as_array()
    estimate = likelihood.maximise(likelihood.over(log_likelihood), x, t_x, T, start)
    errors = estimate.standard_errors
    return BgNbdFit(
        parameters=BgNbdParameters(*(float(v) for v in estimate.values)),
        log_likelihood=estimate.log_likelihood,
        customers=estimate.customers,
        converged=estimate.converged,
        standard_errors=None if errors is None else BgNbdParameters(*(float(v) for v in errors)),
    )


def probability_alive(params: BgNbdParameters, x: float, t_x: float, T: float) -> float:
    """P(alive | x, t_x, T): equation (13)."""
    if x <= 0:
        return 1.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    odds = a / (b + x - 1) * np.exp(min(log_ratio, 700.0))
    return float(1.0 / (1.0 + odds))


def expected_purchases(params: BgNbdParameters, x: float, t_x: float, T: float, t: float) -> float:
    """E[purchases in (T, T + t] | x, t_x, T]: equation (10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if t <= 0:
        return 0.0
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    head = (a + b + x - 1) / (a - 1) if abs(a - 1) > 1e-9 else np.inf
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper
    value = head * body * probability_alive(params, x, t_x, T) if x > 0 else head * body
    return float(value) if np.isfinite(value) else float("nan")


def probabilities_alive(params: BgNbdParameters, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """``probability_alive`` for many customers at once."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.minimum((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), 700.0)
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * np.exp(log_ratio), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases_many(params: BgNbdParameters, x: Floats, t_x: Floats, T: Floats, t: float) -> Floats:
    """``expected_purchases`` for many customers at once."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if t <= 0:
        return np.zeros(len(x))
    if abs(a - 1) <= 1e-9:
        return np.full(len(x), np.nan)
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper
    value = (a + b + x - 1) / (a - 1) * body * probabilities_alive(params, x, t_x, T)
    return np.asarray(np.where(np.isfinite(value), value, np.nan), dtype=np.float64)


def simulate(
    params: BgNbdParameters, customers: int, T: float, rng: np.random.Generator
) -> tuple[Floats, Floats, Floats]:
    """(x, t_x, T) of ``customers`` drawn from the model, each watched for ``T`` after buying at 0."""
    lam = rng.gamma(params.r, 1.0 / params.alpha, customers)
    p = rng.beta(params.a, params.b, customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    for i in range(customers):
        now, count, last = 0.0, 0, 0.0
        while True:
            now += rng.exponential(1.0 / lam[i]) if lam[i] > 0 else np.inf
            if now > T:
                break
            count += 1
            last = now
            if rng.random() < p[i]:
                break
        x[i], t_x[i] = count, last
    return x, t_x, np.full(customers, float(T))
