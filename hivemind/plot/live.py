"""Figures of live runs: the measures per round, and a live sweep."""

from __future__ import annotations

import textwrap

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
from hivemind.plot.style import (
    CATEGORY_COLORS,
    house_style,
)


def live_figure(ds: xr.Dataset) -> Figure:
    """A live run (``live.nc``): embedding distance to the anchor observed against the fitted
    engine, the agents' probes (when asked) beside it, then Jaccard similarity to the anchor's
    text and compliance, per round. A run without an anchor shows what it has: probes and the
    agreement within its discussions. A mixed population (``agent_group`` in ``ds``) is drawn by
    group instead (``groups_figure``)."""
    if "group" in ds.coords:
        return groups_figure(ds)
    rounds = ds["round"].values
    panels = [p for p in ("distance_to_anchor", "probe", "within", "jaccard_to_anchor", "compliant") if _has(ds, p)]
    with house_style():
        fig = Figure(figsize=(4.4 * len(panels), 4.2), layout="constrained")
        axes = dict(zip(panels, np.atleast_1d(fig.subplots(1, len(panels))), strict=True))
        for k, decoding in enumerate(ds.decoding.values):
            color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
            one = ds.sel(decoding=decoding)
            if "distance_to_anchor" in axes:
                ax = axes["distance_to_anchor"]
                for agent in one.agent.values:
                    ax.plot(rounds, one.distance_to_anchor.sel(agent=agent), color=color, lw=0.6, alpha=0.35)
                ax.plot(rounds, one.distance_to_anchor.mean("agent"), "o-", color=color, label=f"{decoding}: live mean")
                if "theory_distance" in one:
                    r2 = float(one.r2_mean)
                    fit = f"fitted {one.theory_model.item()}, mean of runs from round 0" + (
                        "" if np.isnan(r2) else f", R² {r2:.2f}"
                    )
                    ax.plot(rounds, one.theory_distance.mean("agent"), "--", color=color, lw=2, label=fit)
            if "probe" in axes:
                ax = axes["probe"]
                shown = one.agent.values[: min(one.agent.size, 64)]  # every agent of hundreds is a grey cloud
                for agent in shown:
                    ax.plot(rounds, one.probe.sel(agent=agent), color=color, lw=0.6, alpha=0.3)
                ax.plot(rounds, one.probe.mean("agent"), "o-", color=color, lw=2, label=f"{decoding}: mean")
            if "within" in axes:
                ax = axes["within"]
                ax.plot(rounds, one.round_within_discussion_distance, "o-", color=color, label=f"{decoding}: embeddings (rad)")
                if "round_within_discussion_probe_gap" in one:
                    ax.plot(rounds, one.round_within_discussion_probe_gap, "s--", color=color, label=f"{decoding}: probe gap")
            if "jaccard_to_anchor" in axes:
                axes["jaccard_to_anchor"].plot(rounds, one.jaccard_to_anchor.mean("agent"), "o-", color=color, label=decoding)
            if "compliant" in axes:
                axes["compliant"].plot(rounds, one.compliant.mean("agent"), "o-", color=color, label=decoding)
        titles = {
            "distance_to_anchor": "embedding distance to the anchor",
            "probe": textwrap.fill(
                f"probe: agreement with {ds.attrs.get('probe_statement', '')!r}"
                + (" (unreliable on the check set)" if ds.attrs.get("probe_reliable") == 0 else ""),
                50,
            ),
            "within": "disagreement within each discussion",
            "jaccard_to_anchor": "Jaccard similarity to the anchor's text",
            "compliant": textwrap.fill(f"compliance: {ds.attrs.get('rule', '')}", 50),
        }
        for name, ax in axes.items():
            ax.set_title(titles[name], fontsize="medium")
            ax.set_xlabel("round")
            ax.set_xticks(rounds)
            ax.legend(fontsize="small")
        if "distance_to_anchor" in axes:
            axes["distance_to_anchor"].set_ylim(bottom=0)
            axes["distance_to_anchor"].set_ylabel("geodesic distance on the unit sphere (rad)")
        if "probe" in axes:
            axes["probe"].set_ylim(-2.05, 2.05)
            axes["probe"].set_ylabel("stated agreement, -2..2")
        for name in ("jaccard_to_anchor", "compliant"):
            if name in axes:
                axes[name].set_ylim(-0.03, 1.03)
        where = "around a fixed anchor" if "anchor_text" in ds.attrs else f"discussing {ds.attrs.get('topic', '')!r}"
        fig.suptitle(f"{ds.attrs.get('scenario', '')}: {ds.agent.size} language-model agents {where}")
    return fig


def _has(ds: xr.Dataset, panel: str) -> bool:
    return "round_within_discussion_distance" in ds if panel == "within" else panel in ds


LINESTYLES = ("-", "--", ":", "-.")


def groups_figure(ds: xr.Dataset) -> Figure:
    """A mixed population, coloured by group (model family or ``live.groups``), one line style per
    decoding: distance to the anchor (every agent thin, the group's mean thick), Jaccard similarity
    to the anchor's text, compliance and the Vendi score within each group; the fitted couplings
    between the groups in the title when there are two."""
    rounds = ds["round"].values
    groups = [str(g) for g in ds.group.values]
    with house_style():
        fig = Figure(figsize=(16, 4.4), layout="constrained")
        axes = fig.subplots(1, 4)
        panels = (
            ("group_embedding_distance_to_anchor", "embedding distance to the anchor (rad)"),
            ("group_jaccard_to_anchor", "Jaccard similarity to the anchor's text"),
            ("group_compliance", textwrap.fill(f"compliance: {ds.attrs.get('rule', '')}", 45)),
            ("group_vendi_score", "Vendi score within the group (effective messages)"),
        )
        for d, decoding in enumerate(ds.decoding.values):
            style = LINESTYLES[d % len(LINESTYLES)]
            one = ds.sel(decoding=decoding)
            for k, g in enumerate(groups):
                color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
                members = one.agent.values[one.agent_group.values == g]
                for agent in members:
                    axes[0].plot(rounds, one.distance_to_anchor.sel(agent=agent), color=color, lw=0.5, alpha=0.25, ls=style)
                for ax, (var, _) in zip(axes, panels, strict=True):
                    label = f"{g} ({members.size}), {decoding}"
                    ax.plot(rounds, one[var].sel(group=g), style, marker="o", ms=3, color=color, lw=2, label=label)
        for ax, (var, title) in zip(axes, panels, strict=True):
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel("round")
            if var in ("group_jaccard_to_anchor", "group_compliance"):
                ax.set_ylim(-0.03, 1.03)
        axes[0].set_ylim(bottom=0)
        axes[-1].set_ylim(bottom=0)
        axes[0].legend(fontsize="small")
        title = f"{ds.attrs.get('scenario', '')}: {ds.agent.size} language-model agents in {len(groups)} groups"
        title += " around a fixed anchor"
        if "fitted_group_coupling" in ds and len(groups) == 2:
            eta = ds.fitted_group_coupling
            parts = [
                f"{decoding}: {groups[1]} pulls {groups[0]} {float(eta.sel(decoding=decoding)[0, 1]):.3f}, "
                f"{groups[0]} pulls {groups[1]} {float(eta.sel(decoding=decoding)[1, 0]):.3f}"
                for decoding in ds.decoding.values
            ]
            title += "\nfitted peer couplings between the groups: " + "; ".join(parts)
        fig.suptitle(title)
    return fig


def live_sweep_figure(table, key: str) -> Figure:
    """A live sweep (``live_sweep.csv``): compliance, Jaccard, Vendi score and the fitted anchor coupling
    against ``key``, one line per decoding (the mean over seeds) with a band from the lowest to the
    highest seed."""
    import pandas as pd

    panels = (
        ("mean_compliance", "mean compliance"),
        ("final_jaccard_to_anchor", "final Jaccard similarity to the anchor"),
        ("final_vendi_score", "final Vendi score (effective messages)"),
        ("anchor_coupling", "fitted anchor coupling kappa (peer model)"),
    )
    numeric = pd.api.types.is_numeric_dtype(table[key])
    with house_style():
        fig = Figure(figsize=(14, 3.8), layout="constrained")
        axes = fig.subplots(1, len(panels))
        for k, (decoding, g) in enumerate(table.groupby("decoding", sort=False)):
            color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
            for ax, (col, title) in zip(axes, panels, strict=True):
                v = g.assign(_v=pd.to_numeric(g[col], errors="coerce")).groupby(key, sort=False)["_v"]
                xs = list(v.mean().index)
                x = np.asarray(xs, float) if numeric else np.arange(len(xs))
                ax.plot(x, v.mean().values, "o-", color=color, label=decoding)
                ax.fill_between(x, v.min().values, v.max().values, color=color, alpha=0.2, lw=0)
                ax.set_title(title, fontsize="medium")
                if col in ("mean_compliance", "final_jaccard_to_anchor"):
                    ax.set_ylim(-0.03, 1.03)
                if not numeric:
                    ax.set_xticks(x, [str(s) for s in xs])
        for ax in axes:
            ax.set_xlabel(key)
        axes[0].legend()
        seeds = table["seed"].nunique()
        fig.suptitle(f"live sweep over {key}: mean of {seeds} seed{'s' if seeds > 1 else ''}, band from lowest to highest")
    return fig
