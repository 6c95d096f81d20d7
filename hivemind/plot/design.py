"""The graph of a design with what it chose marked: stubborn agents, removed or reweighted ties,
moved innate opinions (colour: the opinions after the design)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib.figure import Figure

from hivemind.plot.style import house_style


def design_graph(result, seed: int = 0) -> Figure:
    """A matplotlib figure of ``result``'s graph (``hivemind.design.DesignResult``)."""
    with house_style():
        return _draw(result, seed)


def _draw(result, seed: int) -> Figure:
    prob = result.problem
    labels = prob.scenario.arrays.labels
    src, dst = np.asarray(prob.ties.src), np.asarray(prob.ties.dst)
    graph = nx.Graph()
    graph.add_nodes_from(range(prob.n))
    graph.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
    pos = nx.spring_layout(graph, seed=seed)
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    params = result.params()
    s = np.asarray(params.s)
    colour = s if s.ndim == 1 else None
    width = np.ones(src.size)
    edge_colour = ["0.7"] * src.size
    if result.intervention in ("edges", "remove"):
        w0, w = np.asarray(prob.base.w), np.asarray(params.w)
        width = 0.3 + 3.0 * w / max(float(w.max()), 1e-12)
        edge_colour = ["tab:red" if w[e] == 0 and w0[e] > 0 else "0.5" for e in range(src.size)]
    nx.draw_networkx_edges(graph, pos, ax=ax, width=width, edge_color=edge_colour, alpha=0.6)
    colours = {"node_color": colour, "cmap": "viridis"} if colour is not None else {"node_color": "tab:blue"}
    nodes = nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=25, **colours)
    if colour is not None:
        fig.colorbar(nodes, ax=ax, label="opinion after the design" if result.intervention == "innate" else "innate opinion")
    marked = []
    if result.intervention == "stubborn":
        marked = list(result.chosen)
    elif result.intervention == "innate" and s.ndim == 1:
        marked = list(np.flatnonzero(np.abs(s - np.asarray(prob.base.s)) > 1e-9))
    if marked:
        nx.draw_networkx_nodes(
            graph, pos, nodelist=marked, ax=ax, node_size=90, node_color="none", edgecolors="tab:red", linewidths=1.5
        )
    if prob.anchors.size:
        nx.draw_networkx_nodes(graph, pos, nodelist=list(prob.anchors), ax=ax, node_size=120, node_shape="*", node_color="black")
    what = {"stubborn": "stubborn agents circled", "innate": "moved agents circled", "remove": "removed ties red"}.get(
        result.intervention, "tie width: weight"
    )
    ax.set_title(f"{result.objective} by {result.intervention} ({what}; {len(labels)} agents)")
    ax.set_axis_off()
    return fig
