"""The theory beside the runs: linear rates and equilibria, fixed points on manifolds, the
entropy estimators (``entropy``), and ``fitting``: every model of a conversation fitted to data,
scored and chosen (imported on their own). The experiments that run the engine to test the
paper's claims are in ``hivemind.experiments``."""

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
