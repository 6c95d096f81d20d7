"""Figures of a sweep: lines over one key, a heatmap over two, a bifurcation diagram."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from hivemind.engine.manifolds import get_manifold

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
from hivemind.plot.style import (
    AGENT_CMAP,
    house_style,
)


def sweep_figure(ds: xr.Dataset) -> Figure:
    """A sweep's picture: the bifurcation diagram for a confidence bound, a heatmap for two
    keys (with the stability boundary step_size * lambda_max = 2 where step size is swept),
    or lines with seed bands for one key."""
    from hivemind.runner.sweep import swept_keys

    keys = swept_keys(ds)
    with house_style():
        if "dynamics.confidence" in keys and "final_state" in ds:
            return _bifurcation(ds, "dynamics.confidence")
        if len(keys) >= 2:
            return _heatmap(ds, keys[0], keys[1])
        return _sweep_lines(ds, keys[0])


def _numeric(ds: xr.Dataset, key: str) -> bool:
    return np.issubdtype(ds[key].dtype, np.number)


def _sweep_lines(ds: xr.Dataset, key: str) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_d, ax_t = fig.subplots(1, 2)
    x = ds[key].values if _numeric(ds, key) else np.arange(ds.sizes[key])
    for ax, name, label in (
        (ax_d, "final_mean_distance", "final mean distance to the nearest anchor"),
        (ax_t, "steps_to_tolerance", f"steps to reach {ds.attrs['tolerance']:g}"),
    ):
        v = ds[name].values.reshape(len(x), -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a point no seed reached: NaN, drawn as a gap
            mid, lo, hi = np.nanmedian(v, 1), np.nanmin(v, 1), np.nanmax(v, 1)
        ax.plot(x, mid, "o-", label=f"median over {ds.sizes['seed']} seeds")
        ax.fill_between(x, lo, hi, alpha=0.25, label="range over seeds")
        ax.set(xlabel=key, ylabel=label)
        if name == "final_mean_distance":
            ax.set_yscale("log")
    if "predicted_rate" in ds and np.isfinite(ds.predicted_rate.values).any():
        d0 = float(ds.mean_distance.isel(step=0).mean())
        with np.errstate(all="ignore"):
            ax_t.plot(
                x, np.log(d0 / ds.attrs["tolerance"]) / ds.predicted_rate.values, "k--", lw=1, label="grounded operator's rate"
            )
    if key == "dynamics.step_size" and "lambda_max" in ds and np.isfinite(ds.lambda_max.values).any():
        for ax in (ax_d, ax_t):
            ax.axvline(2.0 / float(np.nanmax(ds.lambda_max.values)), color="red", lw=1.5, label="step_size x lambda_max = 2")
    if _numeric(ds, key) and np.ptp(x) > 0 and x.min() > 0 and x.max() / x.min() > 20:
        for ax in (ax_d, ax_t):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax_t.legend()
    fig.suptitle(f"{ds.attrs['scenario']}: sweep over {key}")
    return fig


def _heatmap(ds: xr.Dataset, a: str, b: str) -> Figure:
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    others = [d for d in ds.final_mean_distance.dims if d not in (a, b)]
    for ax, name, label, log in (
        (axes[0], "final_mean_distance", "final mean distance (median over seeds)", True),
        (axes[1], "steps_to_tolerance", f"steps to reach {ds.attrs['tolerance']:g} (median)", False),
    ):
        with np.errstate(all="ignore"):
            v = ds[name].median(others).transpose(b, a).values
        norm = LogNorm(vmin=max(np.nanmin(v), 1e-16), vmax=max(np.nanmax(v), 1e-15)) if log and np.isfinite(v).any() else None
        mesh = ax.pcolormesh(np.arange(ds.sizes[a] + 1) - 0.5, np.arange(ds.sizes[b] + 1) - 0.5, v, cmap=AGENT_CMAP, norm=norm)
        fig.colorbar(mesh, ax=ax, label=label)
        ax.set_xticks(range(ds.sizes[a]), [f"{t:.3g}" if _numeric(ds, a) else str(t) for t in ds[a].values], rotation=45)
        ax.set_yticks(range(ds.sizes[b]), [f"{t:.3g}" if _numeric(ds, b) else str(t) for t in ds[b].values])
        ax.set(xlabel=a, ylabel=b)
        step = a if a == "dynamics.step_size" else b if b == "dynamics.step_size" else None
        if step and "lambda_max" in ds and np.isfinite(ds.lambda_max.values).any():
            _stability_boundary(ax, ds, step, a, b)
        if not log and "predicted_rate" in ds and np.isfinite(ds.predicted_rate.values).any():
            d0 = float(ds.mean_distance.isel(step=0).mean())
            with np.errstate(all="ignore"):
                pred = np.log(d0 / ds.attrs["tolerance"]) / ds.predicted_rate.transpose(b, a).values
            levels = np.unique(np.nanquantile(pred, [0.2, 0.5, 0.8])) if np.isfinite(pred).any() else []
            if len(levels) > 1:
                cs = ax.contour(
                    np.arange(ds.sizes[a]), np.arange(ds.sizes[b]), pred, levels=levels, colors="white", linewidths=0.8
                )
                ax.clabel(cs, fmt="%.0f", fontsize=7)
    fig.suptitle(f"{ds.attrs['scenario']}: {a} x {b} (white: the predicted steps; red: step_size x lambda_max = 2)")
    return fig


def _stability_boundary(ax, ds: xr.Dataset, step: str, a: str, b: str) -> None:
    """Where step_size * lambda_max crosses 2, in the heatmap's index coordinates."""
    eta = ds[step].values.astype(float)
    other = b if step == a else a
    lam = ds.lambda_max.transpose(other, step).values[:, 0]
    crossing = np.interp(np.log(2.0 / lam), np.log(eta), np.arange(eta.size), left=np.nan, right=np.nan)
    pos = np.arange(ds.sizes[other])
    if step == a:
        ax.plot(crossing, pos, "r-", lw=2, label="step_size x lambda_max = 2")
    else:
        ax.plot(pos, crossing, "r-", lw=2, label="step_size x lambda_max = 2")
    if np.isfinite(crossing).any():
        ax.legend(loc="upper left", fontsize=8)


def _bifurcation(ds: xr.Dataset, key: str) -> Figure:
    """Final states against the confidence bound: one coordinate on R^1, else the distance to the first state's mean."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, ax_k = fig.subplots(1, 2)
    eps = ds[key].values
    others = [d for d in ds.final_state.dims if d not in (key, "seed", "agent", "coord")]
    final = ds.final_state.isel({d: 0 for d in others}).isel(seed=0).values  # (E, N, D)
    if ds.attrs["manifold"] == "euclidean" and int(ds.attrs["dim"]) == 1:
        y, ylabel = final[..., 0], "final opinion"
    else:
        ref = final[:, :1]
        y = np.asarray(get_manifold(ds.attrs["manifold"], int(ds.attrs["dim"])).dist(final, np.broadcast_to(ref, final.shape)))
        ylabel = "final distance to agent 0's final state"
    for k, e in enumerate(eps):
        ax.plot(np.full(y.shape[1], e), y[k], "o", ms=2, color="tab:blue", alpha=0.4)
    ax.set(xlabel=key, ylabel=ylabel, title="bifurcation diagram (seed 0)")
    k = ds.clusters.isel({d: 0 for d in others}).values.reshape(len(eps), -1)
    ax_k.plot(eps, np.median(k, 1), "o-", label=f"median over {ds.sizes['seed']} seeds")
    ax_k.fill_between(eps, k.min(1), k.max(1), alpha=0.25, label="range")
    with np.errstate(divide="ignore"):
        ax_k.plot(eps, 1 / (2 * eps), "k--", lw=0.8, label="1 / (2 epsilon)")
    ax_k.set(xlabel=key, ylabel="clusters at the end", yscale="log")
    ax_k.legend()
    fig.suptitle(f"{ds.attrs['scenario']}: clusters against the confidence bound")
    return fig
