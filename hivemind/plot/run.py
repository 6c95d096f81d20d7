"""Figures of a run: convergence, the states themselves, the graph, and an animation."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from hivemind.io.records import anchor_indices, mobile_mask
from hivemind.io.results import load_run

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
from hivemind.plot.style import (
    AGENT_CMAP,
    ANCHOR_COLOR,
    FLOOR,
    MAX_AGENTS,
    MAX_GRAPH_NODES,
    MAX_PLOT_STEPS,
    PREDICTION_COLOR,
    UNITS,
    agent_colors,
    colorbar,
    disk_boundary,
    house_style,
    in_poincare_disk,
    manifold_of,
    run_title,
    sample_agents,
    thin_indices,
    thin_steps,
)


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
        keep = thin_indices(steps.size)
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
        ax.set_title(run_title(ds, "convergence to the anchor"))
        ax.legend(loc="lower left")
        colorbar(fig, mappable, ax)
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
    if in_poincare_disk(ds):
        return x[..., 1:] / (1.0 + x[..., :1]), a[1:] / (1.0 + a[0]), ("Poincaré disk u1", "Poincaré disk u2")
    v = np.asarray(manifold_of(ds).log(np.broadcast_to(a, x.shape), x))
    _, _, vt = np.linalg.svd(v[0], full_matrices=False)  # uncentred: the anchor is the origin
    basis = vt[:2].T if vt.shape[0] >= 2 else np.eye(v.shape[-1], 2)
    return v @ basis, np.zeros(2), ("PC1 of Log at anchor", "PC2 of Log at anchor")


def states(ds: xr.Dataset, max_agents: int = MAX_AGENTS) -> Figure:
    """The trajectories themselves: a sphere in 3-D for S^2, the Poincaré disk for H^2, else PCA."""
    with house_style():
        agents = sample_agents(ds, max_agents)
        colors, mappable = agent_colors(ds, agents)
        keep = thin_indices(ds.sizes["step"])
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
            if in_poincare_disk(ds):
                disk_boundary(ax, "boundary at infinity")
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
        ax.set_title(run_title(ds, "trajectories"))
        colorbar(fig, mappable, ax)
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
        fig.suptitle(run_title(ds, f"the graph, {shown}, coloured by distance to the anchor"))
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
    close = np.asarray(manifold_of(ds).dist(x[src], x[dst])) <= float(ds.attrs.get("cluster_tol", 0.05))
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
        picks = thin_indices(ds.sizes["step"], frames)
        fig = Figure(figsize=(5.5, 5), dpi=80, layout="constrained")
        ax = fig.add_subplot()
        if in_poincare_disk(ds):
            disk_boundary(ax)
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
        colorbar(fig, mappable, ax)
        title = ax.set_title("")

        def draw(k):
            dots.set_offsets(xy[picks[k]])
            title.set_text(run_title(ds, f"step {int(ds.step.values[picks[k]])}"))
            return dots, title

        anim = FuncAnimation(fig, draw, frames=len(picks), blit=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        anim.save(path, writer=PillowWriter(fps=fps))
    return path


FIGURES = {"convergence": convergence, "states": states, "graph": graph}


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
