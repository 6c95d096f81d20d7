"""The theory beside the runs: linear rates and equilibria, fixed points on manifolds, the
entropy estimators, and the fitted dynamics and forecast models (``entropy``, ``dynamics_fit``,
``forecast``, ``groups`` for who pulls whom, imported on their own). The experiments that run the engine to test the paper's
claims are in ``hivemind.experiments``."""

from hivemind.theory.equilibrium import equilibrium, equilibrium_report
from hivemind.theory.linear import (
    FIT_FLOOR,
    MAX_DENSE_AGENTS,
    RateMeasurement,
    RatePrediction,
    grounded_operator,
    grounded_spectrum,
    hearers,
    linear_equilibrium,
    mean_distance_of_hearers,
    measured_rate,
    predicted_rate,
    prediction_for,
    rate_report,
)

__all__ = [
    "FIT_FLOOR",
    "MAX_DENSE_AGENTS",
    "RateMeasurement",
    "RatePrediction",
    "equilibrium",
    "equilibrium_report",
    "grounded_operator",
    "grounded_spectrum",
    "hearers",
    "linear_equilibrium",
    "mean_distance_of_hearers",
    "measured_rate",
    "predicted_rate",
    "prediction_for",
    "rate_report",
]
