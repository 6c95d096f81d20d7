"""``hivemind fit``: the forecast models fitted to anyone's trajectories, scored, and written.

Wires the layers below it: ``io.trajectories`` reads the data, ``theory.forecast`` fits and
scores, ``io.results`` and ``plot`` write. ``hivemind.fit`` is this module's ``fit``.
"""

from __future__ import annotations

from pathlib import Path

from hivemind.io.trajectories import Trajectories, load

INTERVAL_METHODS = {
    "parametric": "parametric bootstrap: conversations simulated from the fit, basic intervals",
    "blocks": "moving-block bootstrap over rounds, percentile intervals",
    "refit": "moving-block bootstrap over rounds, each resample refitted",
}


def fit(
    data: str | Path | Trajectories,
    out: str | Path | None = None,
    *,
    resamples: int = 1000,
    train: int | None = None,
    horizon: int = 3,
    seed: int = 0,
    method: str = "parametric",
    formats: tuple[str, ...] = ("png",),
) -> dict:
    """The forecast models of ``hivemind.theory.forecast`` fitted to ``data`` and scored.

    ``data`` is a NetCDF file, a live run's directory or ``Trajectories``. Returns, per
    trajectory (``""`` for a plain file, else the decoding), ``{"models": {name: {"params",
    "n_params", "aic", "one_step", "by_lead", "intervals"}}, "best", "baselines", ...}``;
    with ``out``, also writes ``out/fit.json`` and the figure ``out/fit.png``. Intervals come
    from ``resamples`` draws of ``theory.forecast.bootstrap`` by ``method`` (``"parametric"``,
    ``"blocks"`` or ``"refit"``), seeded by ``seed``.
    """
    from hivemind.io.results import save_json
    from hivemind.theory.dynamics_fit import peer_topology
    from hivemind.theory.forecast import fit_all

    runs = [data] if isinstance(data, Trajectories) else load(data)
    results = {}
    for t in runs:
        topo = peer_topology(t.y.shape[1], t.src, t.dst, directed=True)
        res = fit_all(t.y, t.anchor, topo, t.src, t.dst, train, resamples=resamples, seed=seed, horizon=horizon, method=method)
        decoder = res["deterministic_decoder"]
        how = "blocks" if decoder["detected"] else method
        why = (
            f"a deterministic decoder ({decoder['rule']}; false alarm {decoder['false_alarm']:.2g}): its exact "
            "repeats are not the model's noise, so rounds are resampled"
            if decoder["detected"]
            else f"as asked ({method})"
        )
        res["interval"] = {
            "method": INTERVAL_METHODS[how],
            "name": how,
            "why": why,
            "resamples": resamples,
            "level": 0.9,
            "seed": seed,
        }
        if t.group is not None and len(set(t.group)) > 1 and t.anchor is not None:
            from hivemind.theory.groups import fit_groups

            res["groups"] = fit_groups(t.y, t.anchor, topo, t.src, t.dst, list(t.group), train, min(resamples, 200), seed)
        results[t.name] = res
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        doc = results[""] if list(results) == [""] else {"decodings": results}
        save_json(doc, out / "fit.json")
        from hivemind.plot import forecast_figure, save_figure

        save_figure(forecast_figure(results), out / "fit", formats)
    return results


def format_forecast(results: dict) -> str:
    """One line per (trajectory, model): its parameters, one-step skill against each baseline, AIC."""
    lines = []
    for name, res in results.items():
        sd = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in res["window_sd"].items())
        head = f"{name}: " if name else ""
        lines.append(
            f"{head}{res['agents']} agents, {res['rounds']} rounds, {res['dims']} dims; fitted on {res['train_transitions']} "
            f"transitions, scored one round ahead on {res['heldout_transitions']} (held-out window sd: {sd} rad)"
        )
        decoder = res.get("deterministic_decoder") or {}
        if decoder.get("detected"):
            lines.append(
                f"  deterministic decoder: every agent whose prompt did not change repeated its message "
                f"({decoder['unchanged_prompts']} in the training rounds); every model forecasts those exactly"
            )
        base = list(res["baselines"])
        lines.append(
            f"  {'model':<11}{'k':>4}{'eta':>7}{'kappa':>7}{'theta':>7}{'gamma':>7}{'eps':>7}{'sigma':>8}{'tau':>8}"
            f"{'MSE rad^2':>11}" + "".join(f"{'vs ' + b:>16}" for b in base) + f"{'AIC':>12}"
        )
        for m, e in res["models"].items():
            p, one = e["params"], e["one_step"]
            skills = "".join(
                f"{'-' if one.get('skill_vs_' + b) is None else format(one['skill_vs_' + b], '+.3f'):>16}" for b in base
            )
            if m == "copy":
                middle = f"{'repeat ' + format(p['repeat_rate'], '.2f') + ', copy ' + format(p['copy_rate'], '.2f'):>35}"
                middle += f"{p['noise']:>8.4f}{'':>8}"
            else:
                # Beyond the sphere's diameter every message is within confidence: no limit.
                eps = "-" if "confidence" not in p else "none" if p["confidence"] > 3.2 else format(p["confidence"], ".2f")
                eps = f"{eps:>7}"
                middle = (
                    f"{p['peer_coupling']:>7.3f}{p['anchor_coupling']:>7.3f}{p['stubbornness']:>7.3f}"
                    f"{p['attractor_coupling']:>7.3f}{eps}{p['noise']:>8.4f}{p['observation_noise']:>8.4f}"
                )
            lines.append(f"  {m:<11}{e['n_params']:>4}{middle}{one['mse']:>11.5f}{skills}{e['aic']:>12.0f}")
            if "intervals" in e:
                iv = e["intervals"]
                shown = [(k, v) for k, v in iv.items() if k not in ("gain", "new_rate") and v[1] > 0]
                lines.append("  " + " " * 13 + "90%: " + ", ".join(f"{k} [{v[0]:.4g}, {v[1]:.4g}]" for k, v in shown))
        lines.append(
            "  baselines' MSE: "
            + ", ".join(f"{b} {v:.5f}" for b, v in res["baselines"].items())
            + f"; best on training data alone: {res['best']} ({res.get('selection', 'held-out skill')})"
        )
        if "groups" in res:
            from hivemind.theory.groups import describe

            lines += ["  " + line for line in describe(res["groups"])]
    return "\n".join(lines)
