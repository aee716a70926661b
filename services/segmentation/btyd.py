"""The "buy till you die" model a policy chooses, behind one set of functions.

Three models of the same facts (repeat purchase days x, the time of the last t_x, the customer's
age T): the BG/NBD (Fader, Hardie & Lee 2005), its modification by Batislam, Denizel & Filiztekin
(2007) and the Pareto/NBD (Schmittlein, Morrison & Colombo 1987). The BG/NBD cannot doubt a
customer who never came back (P(alive) = 1 for every one-time buyer); the other two can.

The default is the Pareto/NBD, chosen on the CDNOW sample (2,357 customers, calibrated on weeks
1-39, purchase days in weeks 40-78 held out; 1,882 repeat purchase days happened there):

=========== =========== ======== ======== ============ ============================
model       predicted   MAE      RMSE     Brier P(alive) P(alive) of one-time buyers
=========== =========== ======== ======== ============ ============================
BG/NBD      1,653.4     0.7855   1.6080   0.6083       1.000 (all of them)
MBG/NBD     1,576.7     0.7648   1.6072   0.2057       0.390-0.428
Pareto/NBD  1,665.5     0.7545   1.6029   0.1938       0.295-0.384
=========== =========== ======== ======== ============ ============================

(per customer: absolute and squared error of the expected against the actual holdout purchase
days; Brier: P(alive) against "bought again in the holdout"; 13.7% of one-time buyers did.)
``tests/segmentation/test_btyd.py`` recomputes these figures and holds the choice to them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from services.segmentation import bgnbd, mbgnbd, pareto_nbd
from services.segmentation.bgnbd import BgNbdFit, BgNbdParameters
from services.segmentation.mbgnbd import MbgNbdFit, MbgNbdParameters
from services.segmentation.pareto_nbd import ParetoNbdFit, ParetoNbdParameters

Floats = npt.NDArray[np.float64]


class BuyingModel(StrEnum):
    bgnbd = "bgnbd"
    mbgnbd = "mbgnbd"
    pareto_nbd = "pareto_nbd"


DEFAULT_MODEL = BuyingModel.pareto_nbd

Parameters = BgNbdParameters | MbgNbdParameters | ParetoNbdParameters
Fit = BgNbdFit | MbgNbdFit | ParetoNbdFit

_NAMES = {
    BuyingModel.bgnbd: ("r", "alpha", "a", "b"),
    BuyingModel.mbgnbd: ("r", "alpha", "a", "b"),
    BuyingModel.pareto_nbd: ("r", "alpha", "s", "beta"),
}
_PARAMETERS: dict[BuyingModel, type[Parameters]] = {
    BuyingModel.bgnbd: BgNbdParameters,
    BuyingModel.mbgnbd: MbgNbdParameters,
    BuyingModel.pareto_nbd: ParetoNbdParameters,
}


def model_of(params: Parameters) -> BuyingModel:
    if isinstance(params, ParetoNbdParameters):
        return BuyingModel.pareto_nbd
    if isinstance(params, MbgNbdParameters):
        return BuyingModel.mbgnbd
    return BuyingModel.bgnbd


def fit(model: BuyingModel, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Fit:
    if model is BuyingModel.pareto_nbd:
        return pareto_nbd.fit(x, t_x, T)
    if model is BuyingModel.mbgnbd:
        return mbgnbd.fit(x, t_x, T)
    return bgnbd.fit(x, t_x, T)


def probabilities_alive(params: Parameters, x: Floats, t_x: Floats, T: Floats) -> Floats:
    if isinstance(params, ParetoNbdParameters):
        return pareto_nbd.probabilities_alive(params, x, t_x, T)
    if isinstance(params, MbgNbdParameters):
        return mbgnbd.probabilities_alive(params, x, t_x, T)
    return bgnbd.probabilities_alive(params, x, t_x, T)


def probability_alive(params: Parameters, x: float, t_x: float, T: float) -> float:
    return float(
        probabilities_alive(params, np.array([float(x)]), np.array([float(t_x)]), np.array([float(T)]))[0]
    )


def expected_purchases(params: Parameters, x: float, t_x: float, T: float, t: float) -> float:
    """Purchase days to expect in the ``t`` after ``T``."""
    if isinstance(params, ParetoNbdParameters):
        return pareto_nbd.expected_purchases(params, x, t_x, T, t)
    if isinstance(params, MbgNbdParameters):
        return mbgnbd.expected_purchases(params, x, t_x, T, t)
    return bgnbd.expected_purchases(params, x, t_x, T, t)


def expected_purchases_many(params: Parameters, x: Floats, t_x: Floats, T: Floats, t: float) -> Floats:
    if isinstance(params, ParetoNbdParameters):
        return pareto_nbd.expected_purchases_many(params, x, t_x, T, t)
    if isinstance(params, MbgNbdParameters):
        return mbgnbd.expected_purchases_many(params, x, t_x, T, t)
    return bgnbd.expected_purchases_many(params, x, t_x, T, t)


def document(result: Fit | None) -> dict[str, Any] | None:
    """What a cut-points version keeps of a fit: the model, its parameters, and how good the fit was."""
    if result is None:
        return None
    model = model_of(result.parameters)
    names = _NAMES[model]
    errors = result.standard_errors
    return {
        "model": model.value,
        **{name: getattr(result.parameters, name) for name in names},
        "log_likelihood": result.log_likelihood,
        "customers": result.customers,
        "converged": result.converged,
        "standard_errors": None if errors is None else {name: getattr(errors, name) for name in names},
    }


def parameters_of(stored: dict[str, Any] | None) -> Parameters | None:
    """The parameters a stored fit holds; a fit stored before the choice existed is a BG/NBD one."""
    if not stored:
        return None
    model = BuyingModel(stored.get("model", BuyingModel.bgnbd))
    names = _NAMES[model]
    if not all(name in stored for name in names):
        return None
    return _PARAMETERS[model](*(float(stored[name]) for name in names))
