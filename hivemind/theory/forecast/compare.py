"""Every forecast model fitted, scored and compared, the best chosen on training data."""

from __future__ import annotations

import numpy as np

from hivemind.engine.topology import Topology
from hivemind.theory.forecast.bootstrap import bootstrap
from hivemind.theory.forecast.decoder import deterministic, gate
from hivemind.theory.forecast.model import MODELS, fit
from hivemind.theory.forecast.scores import score


def fit_all(
    y,
    anchor,
    topo: Topology,
    src,
    dst,
    train: int | None = None,
    models=MODELS,
    resamples: int = 0,
    seed: int = 0,
    horizon: int = 3,
    method: str = "parametric",
) -> dict:
    """Every model fitted on the first ``train`` transitions (default: half), scored on the rest,
    with ``bootstrap`` intervals from ``resamples`` draws by ``method`` (none if 0).

    The best model is chosen on the training transitions alone (``selection`` says how): each
    model fitted on the first two thirds of them and scored one round ahead on the last third
    (``validation``), the highest skill against persistence winning; with a single training
    transition, the lowest AIC. Its held-out skill is then read, not used to choose.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    train = max(1, rounds // 2) if train is None else train
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out transition, got {rounds} rounds and train={train}")
    models = [m for m in models if not (m == "anchor" and anchor is None)]
    decoder = deterministic(y, src, dst, train)
    open_ = gate(y, src, dst) if decoder["detected"] else None
    fits, intervals = {}, {}
    for m in models:
        if resamples:
            # A deterministic decoder's exact repeats are not in the model's noise: resample its rounds.
            how = "blocks" if decoder["detected"] else method
            fits[m], intervals[m] = bootstrap(
                y, anchor, topo, m, train, resamples, seed, open_=open_, src=src, dst=dst, method=how
            )
        else:
            fits[m] = fit(y, anchor, topo, m, train, open_=open_, src=src, dst=dst)
    scores = score(y, anchor, topo, src, dst, fits, train, horizon, open_)
    out = {"agents": int(y.shape[1]), "rounds": rounds, "dims": int(y.shape[2]), "deterministic_decoder": decoder}
    out |= {"train_transitions": train, "heldout_transitions": rounds - train, "baselines": scores["baselines"]}
    out["baselines_by_round"] = scores["baselines_by_round"]
    out["window_sd"] = scores["window_sd"]
    out["models"] = {}
    for m, f in fits.items():
        entry = {
            "params": f.params,
            "n_params": f.n_params,
            "train_mse": f.train_mse,
            "aic": f.aic,
            "one_step": {k: v for k, v in scores["models"][m].items() if k != "by_lead"},
            "by_lead": scores["models"][m]["by_lead"],
        }
        if m in intervals:
            entry["intervals"] = intervals[m]
        out["models"][m] = entry
    out["best"], out["selection"], validation = choose(y, anchor, topo, src, dst, models, train, open_, fits)
    for m, v in validation.items():
        out["models"][m]["validation"] = v
    return out


def choose(y, anchor, topo: Topology, src, dst, models, train: int, open_, fits) -> tuple[str, str, dict]:
    """The best model on the training transitions alone, how it was chosen, and each model's
    validation score. Information criteria here count every coordinate of every message as an
    observation, and chose the 389-parameter attractor in every run of figures/live_forecast.json
    (it forecasts held-out rounds no better than peer); validating on later training rounds
    measures what is asked of a model, forecasting rounds it was not fitted on."""
    fit_on = max(1, round(2 * train / 3))
    if fit_on >= train:
        # Skills equal to 6 digits (a coupling fitted to zero makes two nested models one) go to the smaller model.
        best = min(fits, key=lambda m: (round(fits[m].aic, 6), fits[m].n_params))
        return best, "lowest AIC of the fit to the training transitions (one training transition: nothing to validate on)", {}
    early = {m: fit(y, anchor, topo, m, fit_on, open_=open_, src=src, dst=dst) for m in models}
    gate_ = None if open_ is None else open_[:train]
    scored = score(y[: train + 1], anchor, topo, src, dst, early, fit_on, 1, gate_)
    validation = {
        m: {"fit_transitions": fit_on, **{k: v for k, v in scored["models"][m].items() if k != "by_lead"}} for m in models
    }
    skill = {m: validation[m]["skill_vs_persistence"] for m in models}
    best = max(skill, key=lambda m: (-np.inf if skill[m] is None else round(skill[m], 6), -fits[m].n_params))
    how = (
        f"highest one-step skill against persistence on training transitions {fit_on}..{train - 1}, "
        f"each model fitted on transitions 0..{fit_on - 1}"
    )
    return best, how, validation
