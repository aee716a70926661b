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
from scipy import optimize, special

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


def _compress(x: Floats, t_x: Floats, T: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    """Identical (x, t_x, T) rows once, with their counts: the likelihood is a sum over them."""
    stacked = np.column_stack([x, t_x, T])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(float)


def fit(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, *, initial: BgNbdParameters | None = None
) -> BgNbdFit:
    """Maximum-likelihood estimates of (r, α, a, b), with standard errors from the observed information."""
    xs, txs, Ts = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if len(xs) == 0:
        raise ValueError("no customers to fit")
    if np.any(txs > Ts) or np.any(xs < 0) or np.any((xs == 0) & (txs != 0)):
        raise ValueError("each customer needs 0 <= t_x <= T, and t_x = 0 when x = 0")
    ux, utx, uT, weights = _compress(xs, txs, Ts)
    start = np.log((initial or BgNbdParameters(1.0, 1.0, 1.0, 1.0)).as_array())

    def negative(log_params: Floats) -> float:
        value = -log_likelihood(np.exp(log_params), ux, utx, uT, weights)
        return value if np.isfinite(value) else 1e300

    best = optimize.minimize(negative, start, method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-8})
    if not best.success:
        # A rough surface for the gradient method: let the simplex find the way, then polish.
        simplex = optimize.minimize(
            negative,
            best.x,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 20_000, "maxfev": 20_000},
        )
        polished = optimize.minimize(negative, simplex.x, method="L-BFGS-B")
        best = min((best, simplex, polished), key=lambda r: r.fun)
    estimate = np.exp(best.x)
    return BgNbdFit(
        parameters=BgNbdParameters(*(float(v) for v in estimate)),
        log_likelihood=-float(best.fun),
        customers=len(xs),
        converged=bool(best.success),
        standard_errors=_standard_errors(estimate, ux, utx, uT, weights),
    )


def _standard_errors(
    estimate: Floats, x: Floats, t_x: Floats, T: Floats, weights: Floats
) -> BgNbdParameters | None:
    """Square roots of the diagonal of the inverse observed information (a central-difference Hessian)."""

    def ll(params: Floats) -> float:
        return log_likelihood(params, x, t_x, T, weights)

    hessian = np.zeros((4, 4))
    steps = 1e-4 * np.maximum(np.abs(estimate), 1e-3)
    for i in range(4):
        for j in range(i, 4):
            ei, ej = np.zeros(4), np.zeros(4)
            ei[i], ej[j] = steps[i], steps[j]
            value = (
                ll(estimate + ei + ej)
                - ll(estimate + ei - ej)
                - ll(estimate - ei + ej)
                + ll(estimate - ei - ej)
            ) / (4 * steps[i] * steps[j])
            hessian[i, j] = hessian[j, i] = value
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return None
    variances = np.diag(covariance)
    if np.any(variances <= 0) or not np.all(np.isfinite(variances)):
        return None
    return BgNbdParameters(*(float(v) for v in np.sqrt(variances)))


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
