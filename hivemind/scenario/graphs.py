"""Graphs from networkx generators by name, explicit edge lists, or files.

Every failure is a ``GraphError`` naming the scenario key it comes from, so the
scenario loader can turn it into one line.
"""

from __future__ import annotations

import errno
import inspect
import math
import os
import stat
from pathlib import Path
from typing import NamedTuple
from xml.etree.ElementTree import ParseError

import networkx as nx
import numpy as np


class GraphArrays(NamedTuple):
    """The graph in plain numpy: what results files store and what ``Topology`` is built from."""

    labels: list  # node labels in index order
    src: np.ndarray  # int64 (M,), graph edges once each
    dst: np.ndarray
    weight: np.ndarray  # float64 (M,)
    directed: bool
    inertia: np.ndarray  # float64 (N,)

    @property
    def n_nodes(self) -> int:
        return len(self.labels)


def graph_arrays(graph: nx.Graph, inertia: float | dict | None = None) -> GraphArrays:
    """Index a networkx graph: nodes in iteration order, self-loops dropped.

    Edge weights come from the ``weight`` attribute (default 1); inertia from ``inertia``
    (a scalar or ``{node: m}``, default 1) overridden by a node attribute ``inertia``.
    """
    labels = list(graph.nodes)
    index = {node: i for i, node in enumerate(labels)}
    src, dst, weight = [], [], []
    for u, v, data in graph.edges(data=True):
        if u == v:
            continue  # Log_x(x) = 0: a self-loop carries no force
        src.append(index[u])
        dst.append(index[v])
        weight.append(float(data.get("weight", 1.0)))
    m = np.ones(len(labels))
    if isinstance(inertia, dict):
        for node, value in inertia.items():
            m[index[node]] = float(value)
    elif inertia is not None:
        m[:] = float(inertia)
    for node, value in graph.nodes(data="inertia"):
        if value is not None:
            m[index[node]] = float(value)
    return GraphArrays(
        labels=labels,
        src=np.asarray(src, dtype=np.int64),
        dst=np.asarray(dst, dtype=np.int64),
        weight=np.asarray(weight, dtype=np.float64),
        directed=graph.is_directed(),
        inertia=m,
    )


class GraphError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def generator(kind: str):
    """The networkx generator called ``kind`` or ``kind + "_graph"``.

    Only functions from ``networkx.generators`` qualify: a scenario file must not be
    able to call, say, ``networkx.write_graphml``.
    """
    for name in (f"{kind}_graph", kind):
        fn = getattr(nx, name, None)
        if callable(fn) and getattr(fn, "__module__", "").startswith("networkx.generators"):
            return fn
    raise GraphError("graph.kind", f"is not a networkx generator, 'edges' or 'file', got {kind!r}")


# Generators that build the edge arrays directly, without a networkx graph: what
# makes 10^6 agents fit in memory (a networkx graph costs ~500 bytes per edge).
ARRAY_GENERATORS = ("preferential_attachment",)


def preferential_attachment(n: int, m: int, seed: int) -> GraphArrays:
    """A Barabási–Albert scale-free graph built in O(E log E) numpy, without networkx.

    Like ``networkx.barabasi_albert_graph`` it starts from a star of m + 1 nodes, and
    every later node links to m earlier ones chosen with probability proportional to
    their degree. Sampling an endpoint of a uniformly chosen earlier edge is exactly
    degree-proportional; when that endpoint is itself a sampled target, it is
    resolved by pointer jumping, so no Python loop runs over the nodes. Unlike
    networkx, the m targets are drawn independently: the rare repeated target
    (about 3 in 10^5 edges) is dropped rather than redrawn.
    """
    if not 1 <= m < n:
        raise GraphError("graph.params.m", f"must satisfy 1 <= m < n = {n}, got {m}")
    rng = np.random.default_rng(seed)
    n_new = n - m - 1
    new_node = m + 1 + np.repeat(np.arange(n_new), m)
    src = np.concatenate([np.full(m, m), new_node])
    dst = np.concatenate([np.arange(m), np.full(n_new * m, -1)])
    # Edge k of node t picks a uniform earlier edge among those of nodes before t, and
    # one of its two endpoints: the source is known, the target may still be pending.
    before = m + (new_node - m - 1) * m
    picked = (rng.random(n_new * m) * before).astype(np.int64)
    take_source = rng.random(n_new * m) < 0.5
    target = np.where(take_source, src[picked], -1)
    pointer = np.where(take_source, 0, picked)
    while (pending := np.flatnonzero(target < 0)).size:
        dst[m:] = target
        found = dst[pointer[pending]]
        target[pending] = found
        unresolved = pending[found < 0]
        # Jump: point where the pending edge pointed (its pointer is a later edge's).
        pointer[unresolved] = pointer[pointer[unresolved] - m]
    dst[m:] = target
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    _, first = np.unique(lo * n + hi, return_index=True)
    keep = np.sort(first)
    return GraphArrays(
        labels=list(range(n)),
        src=src[keep],
        dst=dst[keep],
        weight=np.ones(keep.size),
        directed=False,
        inertia=np.ones(n),
    )


# Bytes per edge and per node while the edge arrays are built (src, dst, weight and the
# generators' temporaries), for the size check below.
BYTES_PER_EDGE = 64
BYTES_PER_NODE = 64
# What a networkx graph holds besides (measured with tracemalloc on networkx 3.6: ~280 bytes
# per node of an empty graph, ~160-200 per edge of Barabasi-Albert and Watts-Strogatz graphs).
NX_BYTES_PER_NODE = 300
NX_BYTES_PER_EDGE = 250


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return None


def check_size(key: str, nodes: float, edges: float, networkx: bool = False) -> None:
    """Refuse, in one line, a graph that would not fit this machine's memory (before any of it is built)."""
    memory = machine_memory()
    if memory is None:
        return
    per_node = BYTES_PER_NODE + (NX_BYTES_PER_NODE if networkx else 0)
    per_edge = BYTES_PER_EDGE + (NX_BYTES_PER_EDGE if networkx else 0)
    need = per_edge * float(edges) + per_node * float(nodes)
    if need > memory:
        held = f"more than this machine's {memory / 2**30:,.0f} GiB"
        if not math.isfinite(need):
            raise GraphError(key, f"makes more nodes than a float counts: {held}")
        raise GraphError(key, f"makes {nodes:,.0f} nodes and {edges:,.0f} edges, about {need / 2**30:,.0f} GiB: {held}")


def _power(base: float, exponent: float) -> float:
    """base**exponent as a float, inf where it would overflow (2**1e9 is not computed)."""
    try:
        return float(base) ** float(exponent)
    except OverflowError:
        return math.inf


# How many nodes and edges a networkx generator makes, from its arguments, before calling it:
# (nodes, edges, the key the size comes from). Where an edge count is not known, the nodes
# alone decide (every graph costs at least its nodes). Sizes given as lists are summed.
def _nx_size(name: str, a: dict) -> tuple[float, float, str]:
    def num(key: str, default: float = 0.0) -> float:
        v = a.get(key, default)
        if isinstance(v, (list, tuple)):
            return float(sum(x for x in v if isinstance(x, (int, float))))
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default

    n, m, k, p = num("n"), num("m"), num("k"), num("p")
    key = "graph.n" if "n" in a else "graph.params"
    name = name.removesuffix("_graph")
    exponential = {"hypercube": 2, "binomial_tree": 2, "random_cograph": 2, "mycielski": 2, "dorogovtsev_goltsev_mendes": 3}
    if name in exponential:
        nodes = _power(exponential[name], n)
        return nodes, nodes * max(n, 1.0), key
    by_params = {
        "grid_2d": (2 * m * n, 2 * m * n),
        "hexagonal_lattice": (2 * (m + 1) * (n + 1), 3 * (m + 1) * (n + 1)),
        "triangular_lattice": ((m + 1) * (n + 1) / 2, 3 * (m + 1) * (n + 1)),
        "lollipop": (m + n, m * m / 2 + n),
        "tadpole": (m + n, m + n),
        "barbell": (2 * num("m1") + num("m2"), num("m1") ** 2 + num("m2")),
        "ladder": (2 * n, 3 * n),
        "circular_ladder": (2 * n, 3 * n),
        "generalized_petersen": (2 * n, 3 * n),
        "sudoku": (_power(n, 4), _power(n, 4) * 3 * n),
        "margulis_gabber_galil": (n * n, 8 * n * n),
        "windmill": (n * (k - 1) + 1, n * k * k / 2),
        "kneser": (_power(max(n, 1.0), max(k, 0.0)), 0.0),
        "caveman": (num("l") * k, num("l") * k * k / 2),
        "connected_caveman": (num("l") * k, num("l") * k * k / 2),
        "relaxed_caveman": (num("l") * k, num("l") * k * k / 2),
        "planted_partition": (num("l") * k, num("l") * k * k * num("p_in") / 2),
        "ring_of_cliques": (num("num_cliques") * num("clique_size"), num("num_cliques") * num("clique_size") ** 2 / 2),
        "balanced_tree": (_power(max(num("r"), 2.0), num("h") + 1), _power(max(num("r"), 2.0), num("h") + 1)),
        "complete_multipartite": (num("subset_sizes"), num("subset_sizes") ** 2 / 2),
        "random_partition": (num("sizes"), num("sizes") ** 2 * num("p_in") / 2),
        "stochastic_block_model": (num("sizes"), num("sizes") ** 2 / 2),
        "partial_duplication": (num("N"), num("N") * n),
        "paley": (p, p * p / 4),
        "chordal_cycle": (p, 3 * p),
    }
    if name in by_params:
        nodes, edges = by_params[name]
        return nodes, edges, key
    edges_of_n = {
        "complete": n * n / 2,
        "turan": n * n / 2,
        "erdos_renyi": p * n * n,
        "gnp_random": p * n * n,
        "binomial": p * n * n,
        "fast_gnp_random": p * n * n,
        "gnm_random": m,
        "dense_gnm_random": m,
        "hnm_harary": m,
        "barabasi_albert": m * n,
        "extended_barabasi_albert": m * n,
        "powerlaw_cluster": m * n,
        "dual_barabasi_albert": max(num("m1"), num("m2")) * n,
        "watts_strogatz": k * n / 2,
        "newman_watts_strogatz": k * n,
        "connected_watts_strogatz": k * n / 2,
        "hkn_harary": k * n / 2,
        "random_regular": num("d") * n / 2,
        "random_k_out": k * n,
        "circulant": n * num("offsets", 1.0),
        "random_unlabeled_tree": n * num("number_of_trees", 1.0),
        "random_unlabeled_rooted_tree": n * num("number_of_trees", 1.0),
        "random_unlabeled_rooted_forest": n * num("number_of_forests", 1.0),
    }
    return n, edges_of_n.get(name, n), key


def disjoint_groups(size: int, count: int) -> GraphArrays:
    """``count`` disjoint complete graphs of ``size`` nodes: many small discussions run as one population.

    Node ``i`` belongs to group ``i // size``; every pair within a group is an undirected edge.
    """
    check_size(f"graph (size {size:,}, count {count:,})", size * count, count * size * (size - 1) // 2)
    members = np.arange(size * count).reshape(count, size)
    i, j = np.triu_indices(size, k=1)
    return GraphArrays(
        labels=list(range(size * count)),
        src=members[:, i].ravel(),
        dst=members[:, j].ravel(),
        weight=np.ones(count * i.size),
        directed=False,
        inertia=np.ones(size * count),
    )


def from_arrays_generator(kind: str, n: int | None, params: dict, seed: int) -> GraphArrays:
    """One of ``ARRAY_GENERATORS``, with its parameters checked like networkx's."""
    if n is None:
        raise GraphError("graph.n", f"is required with graph.kind = {kind!r}")
    unknown = sorted(set(params) - {"m"})
    if unknown:
        raise GraphError(f"graph.params.{unknown[0]}", f"is not a parameter of {kind} (it takes ['m'])")
    m = params.get("m", 3)
    if isinstance(m, bool) or not isinstance(m, int):
        raise GraphError("graph.params.m", f"must be an integer, got {m!r}")
    check_size("graph.n", n, n * m)
    return preferential_attachment(n, m, seed)


def from_generator(kind: str, n: int | None, params: dict, seed: int) -> nx.Graph:
    fn = generator(kind)
    try:
        sig = inspect.signature(fn)
        accepted = set(sig.parameters)
    except (TypeError, ValueError):  # decorated generators may hide their signature
        accepted = None
    kwargs = dict(params)
    if n is not None:
        if accepted is not None and "n" not in accepted:
            raise GraphError("graph.n", f"is not a parameter of networkx.{fn.__name__}; set its size through graph.params")
        kwargs["n"] = n
    if (accepted is None or "seed" in accepted) and "seed" not in kwargs:
        kwargs["seed"] = seed
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise GraphError(
                f"graph.params.{unknown[0]}", f"is not a parameter of networkx.{fn.__name__} (it takes {sorted(accepted)})"
            )
    nodes, edges, key = _nx_size(fn.__name__, kwargs)
    check_size(key, nodes, edges, networkx=True)
    try:
        graph = fn(**kwargs)
    except (TypeError, ValueError, nx.NetworkXException, ZeroDivisionError, OverflowError, MemoryError) as e:
        raise GraphError("graph.params", f"networkx.{fn.__name__} failed: {e}") from None
    return simple(graph)


def simple(graph: nx.Graph) -> nx.Graph:
    """Collapse multigraphs to simple graphs (parallel edges' weights add up)."""
    if not graph.is_multigraph():
        return graph
    out = nx.DiGraph() if graph.is_directed() else nx.Graph()
    out.add_nodes_from(graph.nodes(data=True))
    for u, v, data in graph.edges(data=True):
        w = data.get("weight", 1.0)
        if out.has_edge(u, v):
            out[u][v]["weight"] += w
        else:
            out.add_edge(u, v, weight=w)
    return out


def from_edges(n: int, edges: list, directed: bool) -> nx.Graph:
    check_size("graph.n", n, len(edges), networkx=True)
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(n))
    for k, edge in enumerate(edges):
        key = f"graph.edges[{k}]"
        if not isinstance(edge, list) or len(edge) not in (2, 3):
            raise GraphError(key, f"must be [i, j] or [i, j, weight], got {edge!r}")
        i, j = edge[0], edge[1]
        for v in (i, j):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
                raise GraphError(key, f"must name nodes 0..{n - 1}, got {v!r}")
        w = edge[2] if len(edge) == 3 else 1.0
        graph.add_edge(i, j, weight=_weight(key, w))
    return graph


def _weight(key: str, w) -> float:
    if isinstance(w, bool):
        raise GraphError(key, f"weight must be a number, got {w!r}")
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise GraphError(key, f"weight must be a number, got {w!r}") from None
    if not math.isfinite(w) or w < 0:
        raise GraphError(key, f"weight must be finite and >= 0, got {w!r}")
    return w


def _node(token: str):
    try:
        return int(token)
    except ValueError:
        return token


def _regular_file(path: Path) -> None:
    """Refuse what is not a plain file: a scenario may come from someone else, and a symlink
    loop, a device (``/dev/zero`` never ends) or a FIFO (blocks forever) must not hang a run."""
    try:
        mode = path.stat().st_mode  # follows symlinks, so a link to a device is caught too
    except FileNotFoundError:
        raise GraphError("graph.path", f"file not found: {path}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise GraphError("graph.path", f"{path} is a symlink loop") from None
        raise GraphError("graph.path", f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise GraphError("graph.path", f"{path} is {kind}, not a regular file")


def from_file(path: Path, directed: bool | None) -> nx.Graph:
    """GraphML (``.graphml``/``.xml``) or a whitespace edge list ``u v [weight]`` with ``#`` comments.

    GraphML goes through the standard library's expat parser, which does not fetch
    external entities (XXE): a file that refers to one is refused as undefined.
    """
    _regular_file(path)
    if path.suffix.lower() in (".graphml", ".xml"):
        try:
            graph = nx.read_graphml(path)
        except ParseError as e:
            if "undefined entity" in str(e):
                raise GraphError(
                    "graph.path", f"{path} uses an entity it does not define ({e}); external entities are not expanded"
                ) from None
            raise GraphError("graph.path", f"{path} is not valid GraphML: {e}") from None
        except (nx.NetworkXError, ValueError, KeyError, TypeError) as e:
            raise GraphError("graph.path", f"{path} is not valid GraphML: {e}") from None
        graph = simple(graph)
        if directed is True and not graph.is_directed():
            graph = graph.to_directed()
        for u, v, data in graph.edges(data=True):
            data["weight"] = _weight(f"graph.path ({path}, edge {u}-{v})", data.get("weight", 1.0))
        return graph
    graph = nx.DiGraph() if directed else nx.Graph()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise GraphError("graph.path", f"cannot read {path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) not in (2, 3):
            raise GraphError("graph.path", f"{path} line {lineno}: expected 'u v [weight]', got {line.strip()!r}")
        w = _weight(f"graph.path ({path} line {lineno})", tokens[2]) if len(tokens) == 3 else 1.0
        graph.add_edge(_node(tokens[0]), _node(tokens[1]), weight=w)
    return graph
