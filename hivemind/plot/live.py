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
    engine, then Jaccard similarity to the anchor's text and compliance, per round. A mixed
    population (``agent_group`` in ``ds``) is drawn by group instead (``groups_figure``)."""
    if "group" in ds.coords:
        return groups_figure(ds)
    rounds = ds["round"].values
    with house_style():
        fig = Figure(figsize=(13, 4.2), layout="constrained")
        ax_d, ax_j, ax_c = fig.subplots(1, 3)
        for k, decoding in enumerate(ds.decoding.values):
            color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
            one = ds.sel(decoding=decoding)
            for agent in one.agent.values:
                ax_d.plot(rounds, one.distance_to_anchor.sel(agent=agent), color=color, lw=0.6, alpha=0.35)
            r2 = float(one.r2_mean)
            fit = f"theory, step {float(one.fitted_step_size):.3g}" + ("" if np.isnan(r2) else f", R² {r2:.2f}")
            ax_d.plot(rounds, one.distance_to_anchor.mean("agent"), "o-", color=color, label=f"{decoding}: live mean")
            ax_d.plot(rounds, one.theory_distance.mean("agent"), "--", color=color, lw=2, label=fit)
            ax_j.plot(rounds, one.jaccard_to_anchor.mean("agent"), "o-", color=color, label=decoding)
            ax_c.plot(rounds, one.compliant.mean("agent"), "o-", color=color, label=decoding)
        ax_d.set_ylim(bottom=0)
        ax_d.set_title("embedding distance to the anchor")
        ax_d.set_ylabel("geodesic distance on the unit sphere (rad)")
        ax_d.legend(fontsize="small")
        ax_j.set_title("Jaccard similarity to the anchor's text")
        ax_j.set_ylim(0, 1)
        ax_j.legend()
        ax_c.set_title(textwrap.fill(f"compliance: {ds.attrs.get('rule', '')}", 50))
        ax_c.set_ylim(-0.03, 1.03)
        ax_c.legend()
        for ax in (ax_d, ax_j, ax_c):
            ax.set_xlabel("round")
            ax.set_xticks(rounds)
        fig.suptitle(f"{ds.attrs.get('scenario', '')}: {ds.agent.size} language-model agents around a fixed anchor")
    return fig


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
