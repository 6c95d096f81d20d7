"""Models of observed trajectories on the sphere, fitted and scored as forecasts, one round ahead.

Observed: unit vectors y[t, i] of every agent i at rounds t = 0..R (the embeddings of a
conversation, or any run), optionally an anchor a that never moves, and the graph the
agents talked on. Every continuous model is one geodesic step of the engine's form,

    x_i <- Exp_{x_i}( eta / m_i sum_j w_ij Log_{x_i}(x_j) + kappa Log_{x_i}(a)
                      + theta Log_{x_i}(y[0, i]) + gamma Log_{x_i}(z) )  (+ process noise sigma),

observed through observation noise tau: y[t, i] = Exp_{x[t, i]}(tau xi), a message's
idiosyncratic part that does not accumulate. The models (``MODELS``):

- ``anchor`` (kappa), ``peer`` (eta, kappa), ``fj`` (plus Friedkin-Johnsen stubbornness theta
  toward each agent's own first message), ``attractor`` (plus a pull gamma toward a free point
  z of the sphere: where the population goes when nobody pulls, the model's own prior), nested;
- ``confidence``: ``peer`` with a smooth bounded-confidence weight w_ij = exp(-(d_ij / eps)^4)
  on each message, eps fitted (w = 1 in the others): does an agent listen only to near views?
- ``copy``: a discrete baseline counted, not fitted: an agent repeats its own last message with
  probability q_repeat, a neighbour's with q_copy, else writes something new; its forecast is
  the normalised q_repeat-weighted mean of its own state and its neighbours'.

Without an anchor, kappa is 0.

Fitting is by the one-step loss (the prediction-error method). The forecast of round t + 1
comes from a filter over the observed rounds 0..t: the model steps the filtered states m_t,
and m_{t+1} = Exp_f(k Log_f(y[t + 1])) moves the forecast f a fraction k (the steady-state
Kalman gain) toward what was observed. k = 1 is "the observation is the state" (tau = 0);
a small k averages the idiosyncratic part away. Under Gaussian innovations of variance S per
tangent dimension this is the exact likelihood of the linear state-space model in its steady
state, so the couplings and k minimise the mean squared geodesic error of the forecasts, S
is its mean square per dimension, and sigma and tau follow from the steady state of the
linearised filter (``_noises``). z is fitted through an unnormalised vector u, z = u / |u|:
the gradient in u is the Riemannian gradient at z (projected on the tangent space), scaled
by 1 / |u|. Couplings stay positive through softplus, k in (0, 1) through a sigmoid.

A decoder that answers the same prompt with the same text (greedy decoding) is detected
(``deterministic``: every agent whose own and in-neighbours' messages did not change repeats
its message in the training rounds) and then every model forecasts those agents exactly
(``gate``): only agents whose prompt changed move.

Scores (``score``): one round ahead from every observed round of the held-out window, per
agent, as MSE in rad^2 and as skill 1 - MSE / MSE_baseline against four baselines measured
the same way: persistence (x = y[t]), copy-the-neighbours (the normalised mean of the
agent's in-neighbours), the population centroid, and the anchor. By lead time h, the model
runs h rounds from every observed origin and is scored against persistence, for the states
and for the macro curves (mean distance to the anchor, mean pairwise distance). Intervals
(``bootstrap``) come from conversations simulated from the fit (parametric) or from blocks of
rounds, each re-estimated by one Gauss-Newton step.
"""

from __future__ import annotations

from hivemind.theory.forecast.baselines import baselines, geodesic_distance, mean_pairwise, skill_score, unit_rows
from hivemind.theory.forecast.bootstrap import BIAS_SHARE, EXACT_HESSIAN, METHODS, block_weights, bootstrap
from hivemind.theory.forecast.compare import fit_all
from hivemind.theory.forecast.decoder import (
    MIN_UNCHANGED,
    SAME,
    SAMPLED_REPEAT,
    copy_forecast,
    copy_rates,
    deterministic,
    everyone_edges,
    gate,
)
from hivemind.theory.forecast.model import (
    BASELINES,
    CONFIDENCE_POWER,
    COUPLINGS,
    FREE,
    GRADIENT_TOLERANCE,
    MAX_ITERATIONS,
    MODELS,
    START,
    Coefficients,
    ForecastFit,
    checked_data,
    descend,
    filter_forecasts,
    filtered,
    fit,
    free_mask,
    model_step,
    noises,
    params_of,
    predict,
    prepare,
    sphere_of,
    theta_of,
    to_params,
)
from hivemind.theory.forecast.scores import score

__all__ = [
    "BASELINES",
    "BIAS_SHARE",
    "CONFIDENCE_POWER",
    "COUPLINGS",
    "Coefficients",
    "EXACT_HESSIAN",
    "FREE",
    "ForecastFit",
    "GRADIENT_TOLERANCE",
    "MAX_ITERATIONS",
    "METHODS",
    "MIN_UNCHANGED",
    "MODELS",
    "SAME",
    "SAMPLED_REPEAT",
    "START",
    "baselines",
    "block_weights",
    "bootstrap",
    "checked_data",
    "copy_forecast",
    "copy_rates",
    "descend",
    "deterministic",
    "everyone_edges",
    "filter_forecasts",
    "filtered",
    "fit",
    "fit_all",
    "free_mask",
    "gate",
    "geodesic_distance",
    "mean_pairwise",
    "model_step",
    "noises",
    "params_of",
    "predict",
    "prepare",
    "score",
    "skill_score",
    "sphere_of",
    "theta_of",
    "to_params",
    "unit_rows",
]
