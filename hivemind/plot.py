"""Figures of a run: convergence, the states themselves, the graph, and an animation.

Uses matplotlib's object-oriented API (``Figure``, no pyplot), so plotting touches no
global state and works without a display. Large runs plot a fixed, seeded sample of
agents; colours always mean the same thing: an agent's initial distance to the anchor.
"""

from __future__ import annotations

import textwrap
import warnings
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from hivemind.engine.manifolds import get_manifold
from hivemind.engine.records import anchor_indices, mobile_mask
from hivemind.io.results import load_run

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
# Categorical colours for lines on white: Okabe-Ito without black and the pale yellow.
CATEGORY_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00"]
AGENT_CMAP = "viridis"  # perceptually uniform and colour-blind safe
ANCHOR_COLOR = "#D55E00"
PREDICTION_COLOR = "#E69F00"
MAX_AGENTS = 200  # lines drawn per figure
MAX_GRAPH_NODES = 500
MAX_POINTS = 200  # points per trajectory
FLOOR = 1e-12  # distances below this are drawn at it on log axes
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
}
UNITS = {"sphere": "rad", "hyperbolic": "geodesic units, curvature -1", "euclidean": "state units"}


@contextmanager
def house_style():
    with mpl.rc_context(RC):
        yield


def sample_agents(ds: xr.Dataset, limit: int = MAX_AGENTS) -> np.ndarray:
    """Up to ``limit`` non-anchor agents, the same ones on every call (seeded, sorted)."""
    others = np.flatnonzero(mobile_mask(ds))
    if others.size <= limit:
        return others
    return np.sort(np.random.default_rng(0).choice(others, limit, replace=False))


def _thin_steps(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))


def agent_colors(ds: xr.Dataset, agents: np.ndarray):
    d0 = ds.distance_to_anchor.isel(seed=0, step=0).values[agents]
    norm = Normalize(vmin=float(d0.min()), vmax=float(max(d0.max(), d0.min() + 1e-12)))
    cmap = mpl.colormaps[AGENT_CMAP]
    return cmap(norm(d0)), mpl.cm.ScalarMappable(norm=norm, cmap=cmap)


def _title(ds: xr.Dataset, what: str) -> str:
    symbol = _manifold(ds).symbol
    return f"{ds.attrs['scenario']}: {what} ({symbol}^{ds.attrs['dim']}, rule {ds.attrs['rule']})"


def _manifold(ds: xr.Dataset):
    return get_manifold(ds.attrs["manifold"], int(ds.attrs["dim"]))


def _in_poincare_disk(ds: xr.Dataset) -> bool:
    """H^2 is drawn in the Poincaré disk; every other space through the log map at the anchor."""
    return ds.attrs["manifold"] == "hyperbolic" and int(ds.attrs["dim"]) == 2


def _disk_boundary(ax, label: str | None = None) -> None:
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.5", lw=1, label=label)


def _colorbar(fig: Figure, mappable, ax, label="initial distance to anchor") -> None:
    fig.colorbar(mappable, ax=ax, label=label, shrink=0.8)


def predicted_rate_of(ds: xr.Dataset):
    """The grounded-Laplacian rate for a ``gradient`` run if it is stable, else None."""
    from hivemind.theory import prediction_for

    pred = prediction_for(ds)
    return pred if pred is not None and pred.stable else None


def convergence(ds: xr.Dataset, max_agents: int = MAX_AGENTS) -> Figure:
    """Distance to the anchor per agent (thin), mean and band across seeds, predicted rate; and the loss."""
    with house_style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax, ax_loss = fig.subplots(1, 2, width_ratios=[1.6, 1])
        steps = ds.step.values
        agents = sample_agents(ds, max_agents)
        colors, mappable = agent_colors(ds, agents)
        d = np.maximum(ds.distance_to_anchor.values, FLOOR)  # (seed, step, agent)
        keep = _thin_steps(steps.size)
        segs = [np.c_[steps[keep], d[0, keep, a]] for a in agents]
        ax.add_collection(LineCollection(segs, colors=colors, linewidths=0.6, alpha=0.45))
        mobile = ds.agent.values != ds.attrs["anchor"]
        mean = d[:, :, mobile].mean(axis=2)  # (seed, step)
        if mean.shape[0] > 1:
            ax.fill_between(
                steps, mean.min(0), mean.max(0), color="0.3", alpha=0.25, lw=0, label=f"range over {mean.shape[0]} seeds"
            )
        ax.plot(steps, mean.mean(0), color="black", lw=2, label="mean over agents")
        pred = predicted_rate_of(ds)
        if pred is not None:
            # The asymptotic slope, anchored where the mean curve is still above the float floor.
            ref = int(np.argmax(mean.mean(0) < 1e3 * FLOOR)) or steps.size - 1
            ref = max(1, min(ref, steps.size - 1) // 2)
            line = mean.mean(0)[ref] * pred.rho ** (steps - steps[ref])
            ax.plot(
                steps,
                np.maximum(line, FLOOR),
                ls="--",
                lw=1.5,
                color=PREDICTION_COLOR,
                label=f"predicted rate: x{pred.rho:.4f} per step",
            )
        ax.set_yscale("log")
        ax.set_xlim(steps[0], steps[-1])
        ax.set_ylim(max(FLOOR, d[:, :, mobile].min() * 0.5), d.max() * 2)
        ax.set_xlabel("step")
        ax.set_ylabel(f"distance to anchor ({UNITS.get(ds.attrs['manifold'], 'geodesic')})")
        ax.set_title(_title(ds, "convergence to the anchor"))
        ax.legend(loc="lower left")
        _colorbar(fig, mappable, ax)
        for k, seed in enumerate(ds.seed.values):
            ax_loss.plot(steps, np.maximum(ds.loss.values[k], FLOOR), lw=1.2, label=f"seed {seed}")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("global loss L = 1/2 sum w k d^2")
        ax_loss.set_title("loss")
        if ds.sizes["seed"] <= 8:
            ax_loss.legend()
        return fig


def planar(ds: xr.Dataset, agents: np.ndarray, seed: int = 0):
    """(T, n, 2) planar coordinates of agents' trajectories, the anchor's, and axis labels.

    H^2 is shown in the Poincaré disk; anything else through the log map at the anchor
    projected on its top two principal directions (for S^2 this is the azimuthal
    equidistant map centred on the anchor).
    """
    states = ds.state.isel(seed=seed)
    x = states.isel(agent=agents).values  # (T, n, D): only the sampled agents
    a = states.isel(step=0, agent=int(ds.attrs["anchor"])).values
    if _in_poincare_disk(ds):
        return x[..., 1:] / (1.0 + x[..., :1]), a[1:] / (1.0 + a[0]), ("Poincaré disk u1", "Poincaré disk u2")
    v = np.asarray(_manifold(ds).log(np.broadcast_to(a, x.shape), x))
    _, _, vt = np.linalg.svd(v[0], full_matrices=False)  # uncentred: the anchor is the origin
    basis = vt[:2].T if vt.shape[0] >= 2 else np.eye(v.shape[-1], 2)
    return v @ basis, np.zeros(2), ("PC1 of Log at anchor", "PC2 of Log at anchor")


def states(ds: xr.Dataset, max_agents: int = MAX_AGENTS) -> Figure:
    """The trajectories themselves: a sphere in 3-D for S^2, the Poincaré disk for H^2, else PCA."""
    with house_style():
        agents = sample_agents(ds, max_agents)
        colors, mappable = agent_colors(ds, agents)
        keep = _thin_steps(ds.sizes["step"])
        anchor = int(ds.attrs["anchor"])
        fig = Figure(figsize=(6.5, 5.5), layout="constrained")
        if ds.attrs["manifold"] == "sphere" and int(ds.attrs["dim"]) == 2:
            ax = fig.add_subplot(projection="3d")
            u, w = np.mgrid[0 : 2 * np.pi : 40j, 0 : np.pi : 20j]
            ax.plot_wireframe(np.cos(u) * np.sin(w), np.sin(u) * np.sin(w), np.cos(w), color="0.85", lw=0.4)
            x = ds.state.isel(seed=0).values
            for c, a in zip(colors, agents, strict=True):
                ax.plot(*x[keep, a].T, color=c, lw=0.7, alpha=0.7)
                ax.scatter(*x[0, a], color=c, s=6)
            for k, i in enumerate(anchor_indices(ds)):
                ax.scatter(
                    *x[0, i], marker="*", s=250, color=ANCHOR_COLOR, edgecolor="black", label=None if k else "anchor", zorder=5
                )
            ax.set_xlabel("x1")
            ax.set_ylabel("x2")
            ax.set_zlabel("x3")
            ax.set_box_aspect((1, 1, 1))
        else:
            ax = fig.add_subplot()
            xy, a_xy, (xl, yl) = planar(ds, agents)
            if _in_poincare_disk(ds):
                _disk_boundary(ax, "boundary at infinity")
            segs = [xy[keep, k] for k in range(len(agents))]
            ax.add_collection(LineCollection(segs, colors=colors, linewidths=0.7, alpha=0.7))
            ax.scatter(xy[0, :, 0], xy[0, :, 1], color=colors, s=8, label="start")
            others = [i for i in anchor_indices(ds) if i != anchor]
            if others:  # the other anchors, through the same projection as the agents
                o_xy, _, _ = planar(ds, np.asarray(others))
                ax.scatter(o_xy[0, :, 0], o_xy[0, :, 1], marker="*", s=250, color=ANCHOR_COLOR, edgecolor="black", zorder=5)
            ax.scatter(*a_xy, marker="*", s=250, color=ANCHOR_COLOR, edgecolor="black", label="anchor", zorder=5)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_aspect("equal", adjustable="datalim")
            ax.autoscale_view()
        ax.legend(loc="upper right")
        ax.set_title(_title(ds, "trajectories"))
        _colorbar(fig, mappable, ax)
        return fig


def _bfs_sample(n: int, src: np.ndarray, dst: np.ndarray, start: int, limit: int) -> np.ndarray:
    """Up to ``limit`` nodes in breadth-first order from ``start`` (then others), so the sample stays connected."""
    if n <= limit:
        return np.arange(n)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist(), strict=True):
        nbrs[u].append(v)
        nbrs[v].append(u)
    seen, order, queue = {start}, [start], deque([start])
    while queue and len(order) < limit:
        for v in nbrs[queue.popleft()]:
            if v not in seen and len(order) < limit:
                seen.add(v)
                order.append(v)
                queue.append(v)
    rest = [i for i in range(n) if i not in seen][: limit - len(order)]
    return np.sort(np.asarray(order + rest))


def graph(ds: xr.Dataset, max_nodes: int = MAX_GRAPH_NODES) -> Figure:
    """The graph, laid out once, coloured by distance to the anchor at the first, a middle and the last step."""
    import networkx as nx

    with house_style():
        anchor = int(ds.attrs["anchor"])
        src, dst = ds.edge_src.values, ds.edge_dst.values
        nodes = _bfs_sample(ds.sizes["agent"], src, dst, anchor, max_nodes)
        inside = np.isin(src, nodes) & np.isin(dst, nodes)
        g = nx.Graph()
        g.add_nodes_from(nodes.tolist())
        g.add_edges_from(zip(src[inside].tolist(), dst[inside].tolist(), strict=True))
        pos = nx.spring_layout(g, seed=0, iterations=50)
        xy = np.array([pos[i] for i in nodes.tolist()])
        where = {node: k for k, node in enumerate(nodes.tolist())}
        segs = [(pos[u], pos[v]) for u, v in g.edges()]
        n_steps = ds.sizes["step"]
        picks = [0, n_steps // 2, n_steps - 1]
        d = np.maximum(ds.distance_to_anchor.isel(seed=0).values[:, nodes], FLOOR)
        anchors = [i for i in anchor_indices(ds) if i in where]
        mobile = mobile_mask(ds)[nodes]
        norm = LogNorm(vmin=max(FLOOR, float(d[:, mobile].min())), vmax=float(d.max()))
        split = _split(ds)
        fig = Figure(figsize=(17.5 if split else 13, 4.6), layout="constrained")
        axes = fig.subplots(1, 4 if split else 3)
        for ax, k in zip(axes, picks, strict=False):
            ax.add_collection(LineCollection(segs, colors="0.75", linewidths=0.4, zorder=1))
            sc = ax.scatter(
                xy[mobile, 0], xy[mobile, 1], c=d[k, mobile], cmap=AGENT_CMAP, norm=norm, s=18, edgecolor="none", zorder=2
            )
            for j, i in enumerate(anchors):
                label = None if j else "anchor"
                ax.scatter(*xy[where[i]], marker="*", s=300, color=ANCHOR_COLOR, edgecolor="black", zorder=3, label=label)
            ax.set_title(f"step {int(ds.step.values[k])}")
            ax.set_xlabel("layout x (spring layout, no units)")
            ax.set_ylabel("layout y")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal", adjustable="datalim")
        axes[0].legend(loc="upper right")
        shown = f"{nodes.size} of {ds.sizes['agent']} nodes" if nodes.size < ds.sizes["agent"] else f"{nodes.size} nodes"
        fig.suptitle(_title(ds, f"the graph, {shown}, coloured by distance to the anchor"))
        nearest = "distance to the nearest anchor" if len(anchor_indices(ds)) > 1 else "distance to anchor"
        fig.colorbar(sc, ax=list(axes[:3]), label=f"{nearest} (log scale)", shrink=0.85)
        if split:
            _clusters_panel(axes[3], ds, nodes, xy, segs, [where[i] for i in anchors])
        return fig


def _split(ds: xr.Dataset) -> bool:
    """Whether the run ends split: several anchors, or more than one cluster."""
    several = len(anchor_indices(ds)) > 1
    return several or ("clusters" in ds and int(ds.clusters.isel(seed=0, step=-1)) > 1)


def cluster_labels(ds: xr.Dataset, step: int = -1) -> np.ndarray:
    """Cluster of every agent at ``step`` (seed 0): components of the edges no longer than ``cluster_tol``."""
    import scipy.sparse
    import scipy.sparse.csgraph

    x = ds.state.isel(seed=0, step=step).values
    src, dst = ds.edge_src.values, ds.edge_dst.values
    close = np.asarray(_manifold(ds).dist(x[src], x[dst])) <= float(ds.attrs.get("cluster_tol", 0.05))
    n = ds.sizes["agent"]
    adjacency = scipy.sparse.coo_matrix((np.ones(int(close.sum())), (src[close], dst[close])), shape=(n, n))
    return scipy.sparse.csgraph.connected_components(adjacency, directed=False)[1]


def _clusters_panel(ax, ds: xr.Dataset, nodes: np.ndarray, xy: np.ndarray, segs, anchor_rows: list[int]) -> None:
    labels = cluster_labels(ds)[nodes]
    sizes = np.bincount(labels)
    rank = np.argsort(np.argsort(-sizes, kind="stable"), kind="stable")[labels]  # 0 for the largest cluster
    palette = mpl.colormaps["tab10"]
    colors = [palette(r) if r < 9 else "0.6" for r in rank]
    ax.add_collection(LineCollection(segs, colors="0.85", linewidths=0.4, zorder=1))
    ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=18, edgecolor="none", zorder=2)
    for i in anchor_rows:
        ax.scatter(*xy[i], marker="*", s=300, color=ANCHOR_COLOR, edgecolor="black", zorder=3)
    n_clusters = int(ds.clusters.isel(seed=0, step=-1)) if "clusters" in ds else len(set(labels.tolist()))
    ax.set_title(f"step {int(ds.step.values[-1])}: {n_clusters} clusters (largest 9 coloured)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def animation(ds: xr.Dataset, path: str | Path, max_agents: int = MAX_AGENTS, frames: int = 60, fps: int = 12) -> Path:
    """A GIF of the states over time in the planar view of ``planar`` (Pillow: no external binaries)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    path = Path(path)
    with house_style():
        agents = sample_agents(ds, max_agents)
        colors, mappable = agent_colors(ds, agents)
        xy, a_xy, (xl, yl) = planar(ds, agents)
        picks = _thin_steps(ds.sizes["step"], frames)
        fig = Figure(figsize=(5.5, 5), dpi=80, layout="constrained")
        ax = fig.add_subplot()
        if _in_poincare_disk(ds):
            _disk_boundary(ax)
        lo, hi = xy.reshape(-1, 2).min(0), xy.reshape(-1, 2).max(0)
        pad = 0.05 * float(np.max(hi - lo) + 1e-9)
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.scatter(*a_xy, marker="*", s=250, color=ANCHOR_COLOR, edgecolor="black", zorder=5, label="anchor")
        dots = ax.scatter(xy[0, :, 0], xy[0, :, 1], color=colors, s=12)
        ax.legend(loc="upper right")
        _colorbar(fig, mappable, ax)
        title = ax.set_title("")

        def draw(k):
            dots.set_offsets(xy[picks[k]])
            title.set_text(_title(ds, f"step {int(ds.step.values[picks[k]])}"))
            return dots, title

        anim = FuncAnimation(fig, draw, frames=len(picks), blit=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        anim.save(path, writer=PillowWriter(fps=fps))
    return path


FIGURES = {"convergence": convergence, "states": states, "graph": graph}


# A figure cannot show more recorded steps than it has pixels; a long run (read from its
# file as needed) is thinned to this many, evenly spaced, first and last included.
MAX_PLOT_STEPS = 2000


def thin_steps(ds: xr.Dataset, most: int) -> xr.Dataset:
    n = ds.sizes["step"]
    if n <= most:
        return ds
    return ds.isel(step=np.unique(np.linspace(0, n - 1, most).round().astype(int)))


def plot_run(
    run: str | Path | xr.Dataset, out: str | Path | None = None, formats=("png", "pdf"), animate: bool = True
) -> list[Path]:
    """Write every figure of a run into ``out`` (default ``RUN/figures``); returns the paths.

    Raises ``RunDirError`` (one line) if ``run`` is not a run directory.
    """
    if isinstance(run, xr.Dataset):
        ds = run
        if out is None:
            raise ValueError("out is required when plotting a Dataset")
    else:
        ds = load_run(run)
        out = Path(run) / "figures" if out is None else out
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = thin_steps(ds, MAX_PLOT_STEPS)
    written = []
    for name, make in FIGURES.items():
        fig = make(ds)
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path)
            written.append(path)
    if animate:
        written.append(animation(ds, out / "states.gif"))
    return written


def save_figure(fig: Figure, stem: str | Path, formats=("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
    for path in paths:
        fig.savefig(path)
    return paths


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
    from hivemind.theory.entropy import summary_table

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
        symbol = _manifold(result).symbol
        fig.suptitle(
            f"{result.attrs['scenario']}: entropy collapse on {symbol}^{d} "
            f"({result.attrs['samples']} samples, mean over agents that hear the anchor)"
        )
    return fig


def bench_figure(result: dict) -> Figure:
    """Left: seconds per step against agents, per implementation. Right: against edges, with slope 1."""
    rows = result["sizes"]
    series = (
        ("engine_step_s", "hivemind"),
        ("numpy_add_at_step_s", "numpy, np.add.at"),
        ("numpy_sparse_step_s", "numpy, scipy sparse"),
        ("loop_step_s", "per-agent Python loop"),
    )
    with house_style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax_n, ax_e = fig.subplots(1, 2)
        for k, (key, label) in enumerate(series):
            pts = [(r["n"], r[key]) for r in rows if key in r]
            if pts:
                n, t = zip(*pts, strict=True)
                ax_n.loglog(n, t, "o-", color=CATEGORY_COLORS[k], label=label)
        ax_n.set_xlabel("agents N")
        ax_n.set_ylabel("seconds per step")
        ax_n.set_title(f"sphere S^{result['options']['dim']}, scale-free graphs, ~{2 * result['options']['m']} edges/agent")
        ax_n.legend()
        edges = [(r["edges"], r["engine_step_s"], "sizes") for r in rows]
        sweep = result.get("edge_sweep") or {"points": []}
        edges += [(p["edges"], p["engine_step_s"], "sweep") for p in sweep["points"]]
        for kind, marker, label in (("sizes", "o", "hivemind, N varies"), ("sweep", "s", f"hivemind, N = {sweep.get('n', 0):,}")):
            pts = sorted((e, t) for e, t, k in edges if k == kind)
            if pts:
                e, t = zip(*pts, strict=True)
                ax_e.loglog(e, t, marker + "-", color=CATEGORY_COLORS[0 if kind == "sizes" else 1], label=label)
        if edges:
            e0, t0, _ = min(edges)
            e_max = max(e for e, _, _ in edges)
            ax_e.loglog([e0, e_max], [t0, t0 * e_max / e0], ":", color="0.5", label="linear in edges")
        ax_e.set_xlabel("directed edges E")
        ax_e.set_ylabel("seconds per step")
        if "slope" in sweep:
            ax_e.set_title(f"fitted slope {sweep['slope']:.2f} at fixed N")
        ax_e.legend()
    return fig


def live_figure(ds: xr.Dataset) -> Figure:
    """A live run (``live.nc``): embedding distance to the anchor observed against the fitted
    engine, then Jaccard similarity to the anchor's text and compliance, per round."""
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


def sweep_figure(ds: xr.Dataset) -> Figure:
    """A sweep's picture: the bifurcation diagram for a confidence bound, a heatmap for two
    keys (with the stability boundary step_size * lambda_max = 2 where step size is swept),
    or lines with seed bands for one key."""
    from hivemind.engine.sweep import swept_keys

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


def forecast_figure(results: dict) -> Figure:
    """``hivemind fit``: each model's one-step skill against the four baselines, and its skill
    against persistence by lead time (states and the macro curves), one row per trajectory."""
    rows = list(results)
    with house_style():
        fig = Figure(figsize=(11, 3.6 * len(rows)), layout="constrained")
        axes = np.atleast_2d(fig.subplots(len(rows), 2))
        for r, name in enumerate(rows):
            res = results[name]
            models = list(res["models"])
            base = [b for b in ("persistence", "neighbours", "centroid", "anchor") if b in res["baselines"]]
            ax = axes[r, 0]
            width = 0.8 / max(len(models), 1)
            for k, m in enumerate(models):
                one = res["models"][m]["one_step"]
                vals = [one.get(f"skill_vs_{b}") or 0.0 for b in base]
                x = np.arange(len(base)) + (k - (len(models) - 1) / 2) * width
                ax.bar(x, vals, width, label=m, color=CATEGORY_COLORS[k % len(CATEGORY_COLORS)])
            ax.axhline(0, color="0.4", lw=0.8)
            ax.set_xticks(np.arange(len(base)), [f"vs {b}" for b in base])
            ax.set_ylabel("one-step skill (1 - MSE / MSE baseline)")
            ax.set_title(f"{name + ': ' if name else ''}one round ahead, held-out rounds (best: {res['best']})")
            ax.legend(frameon=False, fontsize=8)
            ax = axes[r, 1]
            for k, m in enumerate(models):
                leads = res["models"][m]["by_lead"]
                hs = sorted(leads, key=int)
                c = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
                ax.plot([int(h) for h in hs], [leads[h]["states"] for h in hs], "o-", color=c, label=f"{m}: states")
                key = "anchor_distance" if "anchor_distance" in leads[hs[0]] else "pairwise"
                macro = [leads[h][key] for h in hs]
                ax.plot([int(h) for h in hs], macro, "x--", color=c, label=f"{m}: {key.replace('_', ' ')}")
            ax.axhline(0, color="0.4", lw=0.8)
            ax.set_xlabel("lead time (rounds)")
            ax.set_ylabel("skill against persistence")
            ax.set_title("free-running from every observed origin")
            ax.legend(frameon=False, fontsize=7, ncol=2)
    return fig
