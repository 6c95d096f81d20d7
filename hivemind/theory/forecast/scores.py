"""One-step skill on held-out rounds and skill by lead time, against the baselines."""

from __future__ import annotations

import numpy as np

from hivemind.engine.topology import Topology
from hivemind.theory.forecast.baselines import baselines, geodesic_distance, mean_pairwise, skill_score
from hivemind.theory.forecast.model import ForecastFit, predict


def score(y, anchor, topo: Topology, src, dst, fits: dict[str, ForecastFit], train: int, horizon: int = 3, open_=None) -> dict:
    """One-step skill on the held-out transitions train..R-1, and skill by lead time (see the module).

    Returns ``{"baselines": {name: mse}, "models": {model: {...}}, "window_sd": ...}``.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    origins = np.arange(train, rounds)
    truth = y[origins + 1]
    base_sq = {k: geodesic_distance(v, truth) ** 2 for k, v in baselines(y, anchor, src, dst, origins).items()}
    base = {k: float(np.mean(v)) for k, v in base_sq.items()}
    sq_persistence = base_sq["persistence"]
    out = {"baselines": base, "models": {}, "heldout_transitions": len(origins)}
    # Per held-out round: the raw material of intervals over rounds.
    out["baselines_by_round"] = {k: v.mean(1).tolist() for k, v in base_sq.items()}
    macro_obs = {"pairwise": mean_pairwise(y)}
    if anchor is not None:
        macro_obs["anchor_distance"] = geodesic_distance(y, np.asarray(anchor)[None, None]).mean(1)
    out["window_sd"] = {k: float(np.std(v[train:])) for k, v in macro_obs.items()}
    for name, f in fits.items():
        pred = predict(y, anchor, topo, f, origins, 1, open_, src, dst)
        sq = geodesic_distance(pred, truth) ** 2
        mse = float(np.mean(sq))
        m = {"mse": mse, **{f"skill_vs_{b}": skill_score(mse, v) for b, v in base.items()}, "mse_by_round": sq.mean(1).tolist()}
        # Per-round skill against persistence: its spread over rounds is the interval's raw material.
        m["skill_vs_persistence_by_round"] = [
            skill_score(float(a.mean()), float(b.mean())) for a, b in zip(sq, sq_persistence, strict=True)
        ]
        leads = {}
        for h in range(1, horizon + 1):
            starts = np.arange(train, rounds - h + 1)
            if len(starts) == 0 or (f.model == "copy" and h > 1):
                break
            ahead = predict(y, anchor, topo, f, starts, h, open_, src, dst)
            obs = y[starts + h]
            state = skill_score(
                float(np.mean(geodesic_distance(ahead, obs) ** 2)), float(np.mean(geodesic_distance(y[starts], obs) ** 2))
            )
            lead = {"states": state}
            for key, curve in macro_obs.items():
                if key == "anchor_distance":
                    pred_macro = geodesic_distance(ahead, np.asarray(anchor)[None, None]).mean(1)
                else:
                    pred_macro = mean_pairwise(ahead)
                err, pers = pred_macro - curve[starts + h], curve[starts] - curve[starts + h]
                lead[key] = skill_score(float(np.mean(err**2)), float(np.mean(pers**2)))
                lead[f"{key}_rmse"] = float(np.sqrt(np.mean(err**2)))
            leads[str(h)] = lead  # string keys, as JSON writes them
        m["by_lead"] = leads
        out["models"][name] = m
    return out
