"""Figures of the analyses: path independence, entropy collapse, the forecast models."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
from hivemind.plot.style import (
    AGENT_CMAP,
    ANCHOR_COLOR,
    CATEGORY_COLORS,
    FLOOR,
    PREDICTION_COLOR,
    house_style,
    manifold_of,
)


def paths_figure(report) -> Figure:
    """Left: mean distance to the anchor over time, one line per run, coloured by rule.
    Right: per agent, the spread of endpoints across runs and the distance to the anchor's state."""
    with house_style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax, ax_agents = fig.subplots(1, 2, width_ratios=[1.4, 1])
        rules = list(dict.fromkeys(r.rule for r in report.runs))
        color = {rule: CATEGORY_COLORS[k % len(CATEGORY_COLORS)] for k, rule in enumerate(rules)}
        for run in report.runs:
            for s in range(run.mean_distance.shape[0]):
                ax.plot(run.steps, np.maximum(run.mean_distance[s], FLOOR), color=color[run.rule], lw=1, alpha=0.7)
        for rule in rules:
            ax.plot([], [], color=color[rule], label=rule)
        ax.axhline(report.tol, color="0.4", ls="--", lw=1, label=f"tolerance {report.tol:.2g}")
        ax.set(yscale="log", xlabel="step", ylabel="mean distance to the anchor", title="different paths")
        ax.legend(loc="upper right")

        others = np.delete(np.arange(len(report.labels)), report.anchor)
        finite_max = np.nanmax(np.where(np.isfinite(report.gap[others]), report.gap[others], np.nan), initial=report.tol)
        ceiling = max(finite_max, report.tol) * 10
        order = np.argsort(-np.nan_to_num(np.maximum(report.spread, report.gap)[others], nan=np.inf, posinf=np.inf))
        rank = np.arange(others.size)
        gap = np.where(np.isfinite(report.gap), report.gap, ceiling)[others][order]
        spread = np.where(np.isfinite(report.spread), report.spread, ceiling)[others][order]
        ax_agents.plot(rank, np.maximum(gap, FLOOR), ".", ms=3, color=ANCHOR_COLOR, label="distance to the anchor's state")
        ax_agents.plot(rank, np.maximum(spread, FLOOR), ".", ms=3, color="#0072B2", label="spread of endpoints")
        cut = ~report.reachable[others][order]
        if cut.any():
            ax_agents.plot(rank[cut], np.full(cut.sum(), ceiling), "x", color="k", label="no path to the anchor")
        ax_agents.axhline(report.tol, color="0.4", ls="--", lw=1)
        verdict = "agree" if report.agrees else f"{report.disagreeing.size} disagree"
        ax_agents.set(yscale="log", xlabel="agent (worst first)", ylabel="geodesic distance", title=f"same end? {verdict}")
        ax_agents.legend(loc="upper right")
        fig.suptitle(f"{report.scenario}: path independence over {len(report.runs)} rule x start combinations")
    return fig


def entropy_figure(result: xr.Dataset, predicted_slope: float | None = None) -> Figure:
    """Entropy against entanglement lambda (final step), and entropy and degrees of freedom against time."""
    from hivemind.experiments.entropy import summary_table

    table = summary_table(result)
    lams, steps = table.lam.values, table.step.values
    d = int(result.attrs["dim"])
    with house_style():
        fig = Figure(figsize=(13, 4.2), layout="constrained")
        ax_lam, ax_time, ax_dof = fig.subplots(1, 3)
        final = table.isel(step=-1)
        ax_lam.plot(lams, final.gaussian_entropy, "o-", color="#0072B2", label="Gaussian (log det)")
        ax_lam.plot(lams, final.knn_entropy, "s--", color="#009E73", label="Kozachenko-Leonenko kNN")
        inside = lams < 1
        h0 = float(final.gaussian_entropy.sel(lam=lams[0]))
        ref = h0 + d * np.log1p(-lams[inside]) - d * np.log1p(-lams[0])
        ax_lam.plot(lams[inside], ref, ":", color="0.3", label=r"$H_0 + d\,\log(1-\lambda)$ (context = a point)")
        ax_lam.set(xlabel=r"entanglement $\lambda$", ylabel="entropy per node (nats)", title=f"at step {int(steps[-1])}")
        ax_lam.legend(loc="lower left")

        cmap = mpl.colormaps[AGENT_CMAP]
        norm = Normalize(0, 1)
        for lam in lams:
            ax_time.plot(steps, table.gaussian_entropy.sel(lam=lam), color=cmap(norm(lam)), label=rf"$\lambda$ = {lam:g}")
            ax_dof.plot(steps, table.resolved_dimension.sel(lam=lam), color=cmap(norm(lam)))
            ax_dof.plot(steps, table.participation_ratio.sel(lam=lam), color=cmap(norm(lam)), ls="--", lw=1)
        if predicted_slope is not None and 1.0 in lams:
            h1 = table.gaussian_entropy.sel(lam=1.0).values
            mid = len(steps) // 2
            if np.isfinite(h1[mid]):
                line = h1[mid] + predicted_slope * (steps - steps[mid])
                ax_time.plot(steps, line, ":", color=PREDICTION_COLOR, lw=2, label=f"theory: {predicted_slope:.3g} nats/step")
        ax_time.set(xlabel="step", ylabel="Gaussian entropy per node (nats)", title="entropy over time")
        ax_time.legend(loc="lower left")
        ax_dof.plot([], [], color="0.3", label=f"resolved dimension (at {result.attrs['resolution']:g})")
        ax_dof.plot([], [], color="0.3", ls="--", lw=1, label="participation ratio")
        ax_dof.set(xlabel="step", ylabel="degrees of freedom", ylim=(-0.3, d + 0.5), title="degrees of freedom")
        ax_dof.legend(loc="center right")
        fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax_dof, label=r"$\lambda$", shrink=0.8)
        symbol = manifold_of(result).symbol
        fig.suptitle(
            f"{result.attrs['scenario']}: entropy collapse on {symbol}^{d} "
            f"({result.attrs['samples']} samples, mean over agents that hear the anchor)"
        )
    return fig


def discussions_figure(doc: dict) -> Figure:
    """``hivemind fit`` on many discussions: each model's skill against persistence on training data
    (cross-validated over the training discussions, or on later training rounds: the choice) and
    on later training rounds, the chosen model's alone on the held-out data, with 90 % intervals;
    and the chosen model's attractors, when it has one per group in R^1. Refused models are left out."""
    models = [m for m in doc["models"] if "refused" not in doc["models"][m]]
    best = doc["best"]
    p = doc["models"][best]["params"]
    attractors = p.get("attractor") if isinstance(p.get("attractor"), dict) else None
    scalar = attractors is not None and all(v is None or len(v) == 1 for v in attractors.values())
    with house_style():
        fig = Figure(figsize=(11 if scalar else 7, 0.45 * len(models) + 1.6), layout="constrained")
        axes = fig.subplots(1, 2 if scalar else 1, squeeze=False)[0]
        ax = axes[0]
        y = np.arange(len(models))[::-1]
        scores = (
            ("cv", 0.2, "0.55", "cross-validated, training discussions"),
            ("validation", 0.2, "0.55", "later training rounds, fitted on earlier ones"),
            ("one_step", 0.0, CATEGORY_COLORS[2], "later rounds of the training discussions"),
            ("heldout", -0.2, CATEGORY_COLORS[0], "held out (the chosen model only)"),
        )
        for name, offset, colour, what in scores:
            labelled = False
            for row, m in zip(y, models, strict=True):
                s = doc["models"][m].get(name)
                if not s or s.get("skill_vs_persistence") is None:
                    continue
                iv = s.get("interval_vs_persistence")
                err = None if iv is None else [[s["skill_vs_persistence"] - iv[0]], [iv[1] - s["skill_vs_persistence"]]]
                label, labelled = (None if labelled else what), True
                x = s["skill_vs_persistence"]
                ax.errorbar(x, row + offset, xerr=err, fmt="o", color=colour, ms=4, capsize=2, label=label)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_yticks(y, [f"{m} (best)" if m == best else m for m in models])
        ax.set_xlabel("one-round-ahead skill against persistence (90 % intervals)")
        d = doc["data"]
        ax.set_title(f"{d['conversations']} discussions, {d['dims']} dims ({doc['space']})")
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        if scalar:
            ax = axes[1]
            names = list(attractors)
            values = [np.nan if attractors[g] is None else attractors[g][0] for g in names]
            ax.bar(np.arange(len(names)), values, color=CATEGORY_COLORS[1])
            ax.set_xticks(np.arange(len(names)), names, rotation=45 if len(names) > 6 else 0)
            ax.set_ylabel("attractor")
            ax.set_title(f"attractors of the chosen model, by {doc['data']['attractor_groups']['column']}")
            ax.axhline(0, color="0.4", lw=0.8)
    return fig
