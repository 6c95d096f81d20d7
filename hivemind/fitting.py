"""``hivemind fit``: the forecast models fitted to anyone's trajectories, scored, and written.

Wires the layers below it: ``io.trajectories`` reads the data, ``theory.forecast`` fits and
scores, ``io.results`` and ``plot`` write. ``hivemind.fit`` is this module's ``fit``.
"""

from __future__ import annotations

from pathlib import Path

from hivemind.io.trajectories import Trajectories, load


def fit(
    data: str | Path | Trajectories,
    out: str | Path | None = None,
    *,
    resamples: int = 1000,
    train: int | None = None,
    horizon: int = 3,
    seed: int = 0,
    formats: tuple[str, ...] = ("png",),
) -> dict:
    """The forecast models of ``hivemind.theory.forecast`` fitted to ``data`` and scored.

    ``data`` is a NetCDF file, a live run's directory or ``Trajectories``. Returns, per
    trajectory (``""`` for a plain file, else the decoding), ``{"models": {name: {"params",
    "n_params", "aic", "one_step", "by_lead", "intervals"}}, "best", "baselines", ...}``;
    with ``out``, also writes ``out/fit.json`` and the figure ``out/fit.png``.
    """
    from hivemind.io.results import save_json
    from hivemind.theory.dynamics_fit import peer_topology
    from hivemind.theory.forecast import fit_all

    runs = [data] if isinstance(data, Trajectories) else load(data)
    results = {}
    for t in runs:
        topo = peer_topology(t.y.shape[1], t.src, t.dst, directed=True)
        results[t.name] = fit_all(t.y, t.anchor, topo, t.src, t.dst, train, resamples=resamples, seed=seed, horizon=horizon)
        results[t.name]["interval"] = {"method": "moving-block bootstrap over rounds", "resamples": resamples, "level": 0.9}
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
        base = list(res["baselines"])
        lines.append(
            f"  {'model':<10}{'k':>5}{'eta':>8}{'kappa':>8}{'theta':>8}{'gamma':>8}{'sigma':>8}{'MSE rad^2':>11}"
            + "".join(f"{'vs ' + b:>16}" for b in base)
            + f"{'AIC':>12}"
        )
        for m, e in res["models"].items():
            p, one = e["params"], e["one_step"]
            skills = "".join(
                f"{'-' if one.get('skill_vs_' + b) is None else format(one['skill_vs_' + b], '+.3f'):>16}" for b in base
            )
            lines.append(
                f"  {m:<10}{e['n_params']:>5}{p['peer_coupling']:>8.3f}{p['anchor_coupling']:>8.3f}{p['stubbornness']:>8.3f}"
                f"{p['attractor_coupling']:>8.3f}{p['noise']:>8.4f}{one['mse']:>11.5f}{skills}{e['aic']:>12.0f}"
            )
            if "intervals" in e:
                iv = e["intervals"]
                lines.append(
                    "  "
                    + " " * 15
                    + "90%: "
                    + ", ".join(f"{k} [{v[0]:.3f}, {v[1]:.3f}]" for k, v in iv.items() if k != "noise" and v[1] > 0)
                )
        lines.append(
            "  baselines' MSE: "
            + ", ".join(f"{b} {v:.5f}" for b, v in res["baselines"].items())
            + f"; best held-out one-step model: {res['best']}"
        )
    return "\n".join(lines)
