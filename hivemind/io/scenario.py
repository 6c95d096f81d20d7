"""Scenario files: TOML in, validated frozen dataclasses out.

Every problem with a file is a ``ScenarioError`` that renders as one line naming the
file and the key, e.g. ``scenarios/x.toml: dynamics.step_size must be > 0, got -1``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hivemind.engine.manifolds import MANIFOLDS, get_manifold
from hivemind.engine.rules import BUILTIN_RULES
from hivemind.engine.schedules import SCHEDULES
from hivemind.engine.topology import GraphArrays, graph_arrays
from hivemind.io import graphs


class ScenarioError(ValueError):
    """A scenario problem: ``str(e)`` is the one-line message for the user."""

    def __init__(self, file: str | Path | None, key: str | None, message: str):
        self.file = str(file) if file is not None else "<scenario>"
        self.key = key
        self.message = message
        super().__init__(f"{self.file}: {key} {message}" if key else f"{self.file}: {message}")


@dataclass(frozen=True)
class ManifoldSpec:
    kind: str
    dim: int


@dataclass(frozen=True)
class GraphSpec:
    kind: str
    n: int | None = None
    params: dict = field(default_factory=dict)
    seed: int = 0
    edges: list | None = None
    directed: bool = False
    path: str | None = None


@dataclass(frozen=True)
class AnchorSpec:
    node: Any = 0
    state: Any = "random"  # "random", "init" (its row of init.states) or ambient coordinates
    coupling: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class InitSpec:
    kind: str = "cap"
    spread: float = 1.0
    states: list | None = None
    seed: int | None = None  # None: drawn from each run seed


@dataclass(frozen=True)
class DynamicsSpec:
    rule: str = "gradient"
    step_size: float = 0.05
    steps: int = 1000
    noise: float = 0.0
    noise_schedule: str = "constant"
    noise_decay: float = 100.0
    gossip_prob: float = 0.5
    options: dict = field(default_factory=dict)
    confidence: float | None = None  # bounded confidence: edges act only between agents closer than this


@dataclass(frozen=True)
class RecordSpec:
    every: int = 10
    cluster_tol: float = 0.05  # agents closer than this over an edge are in one cluster


@dataclass(frozen=True)
class RunSpec:
    seeds: tuple[int, ...] = (0,)
    precision: str = "float32"
    checkpoint_every: int | None = None  # steps between checkpoints; None: every chunk, 0: never
    shard: str = "none"  # "seeds" or "agents": spread the run over jax.devices()


@dataclass(frozen=True)
class AgentsSpec:
    inertia: Any = 1.0  # a number, one number per node, "degree", or "active"
    stubbornness: Any = 0.0  # theta: a number, one per node, or a table keyed by node (as given)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    manifold: ManifoldSpec
    graph: GraphSpec
    anchors: tuple[AnchorSpec, ...]
    init: InitSpec
    dynamics: DynamicsSpec
    record: RecordSpec
    run: RunSpec
    agents: AgentsSpec
    live: Any = None  # a hivemind.live.config.LiveSpec when the file has a [live] section
    source: str | None = None
    text: str = ""
    overrides: tuple[str, ...] = ()  # the --set values applied to ``text``
    base: str | None = field(default=None, compare=False, repr=False)  # where relative paths resolve
    arrays: GraphArrays | None = field(default=None, compare=False, repr=False)

    @property
    def anchor(self) -> AnchorSpec:
        """The first anchor: the anchor of a single-anchor scenario."""
        return self.anchors[0]

    @cached_property
    def anchor_indices(self) -> tuple[int, ...]:
        # Cached: the label lookup is O(N), and the engine asks once per seed.
        return tuple(_anchor_index(self.arrays.labels, a.node) for a in self.anchors)

    @property
    def anchor_index(self) -> int:
        return self.anchor_indices[0]

    @cached_property
    def stubbornness(self) -> np.ndarray:
        """theta_i per node index (0 at anchors)."""
        return _stubbornness_vector(self.agents.stubbornness, self.arrays.labels, self.anchor_indices)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the resolved scenario and its graph: equal exactly when two runs compute the same thing.

        Unlike ``sha256`` (of the file's text) it sees ``--set`` overrides and the content
        of a graph file, which is what resuming a run must check.
        """
        data = self.to_dict()
        if "live" in data:
            # What is computed after the conversation (the fit, and the embeddings the measures rest
            # on) may change without invalidating its transcript: texts do not depend on them.
            data["live"] = {k: v for k, v in data["live"].items() if k not in ("fit", "fit_resamples", "embedding_model")}
        h = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
        a = self.arrays
        for arr in (a.src, a.dst, a.weight, a.inertia):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(json.dumps([str(v) for v in a.labels]).encode())
        return h.hexdigest()

    def to_dict(self) -> dict:
        """The resolved scenario as plain data (what ``manifest.json`` records)."""
        out = {}
        for name in ("name", "description", "manifold", "graph", "anchors", "init", "dynamics", "record", "run", "agents"):
            value = getattr(self, name)
            if name == "anchors":
                value = [asdict(a) for a in value]
            out[name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        out["run"]["seeds"] = list(self.run.seeds)
        if self.live is not None:
            out["live"] = self.live.to_dict()
        return out


# ---------------------------------------------------------------------------
# Reading


class _Reader:
    """Reads typed keys from a TOML table, remembering which ones were used."""

    def __init__(self, file: str, data: dict):
        self.file = file
        self.data = data
        self.used: dict[str, set] = {}

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.file, key, message)

    def table(self, section: str) -> dict:
        value = self.data.get(section, {})
        if not isinstance(value, dict):
            raise self.error(section, f"must be a table ([{section}]), got {_show(value)}")
        self.used.setdefault(section, set())
        return value

    def get(self, section: str, key: str, kind: str, default: Any = ..., *, check=None) -> Any:
        table = self.table(section) if section else self.data
        self.used.setdefault(section, set()).add(key)
        path = f"{section}.{key}" if section else key
        if key not in table:
            if default is ...:
                raise self.error(path, "is required")
            return default
        value = _typed(self, path, table[key], kind)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(path, f"{problem}, got {_show(value)}")
        return value

    def check_top_level(self, sections: tuple[str, ...], keys: tuple[str, ...]) -> None:
        """Before reading anything: "[grpah]" should say so, not "graph.kind is required"."""
        for key, value in self.data.items():
            if key not in sections and key not in keys:
                what = "section" if isinstance(value, dict) else "key"
                raise self.error(key, f"is not a known {what} (sections: {', '.join(sections)})")

    def finish(self, sections: tuple[str, ...]) -> None:
        """After reading: any key inside a section that no ``get`` asked for is unknown."""
        for section in sections:
            value = self.data.get(section)
            if isinstance(value, dict):
                unknown = sorted(set(value) - self.used.get(section, set()))
                if unknown:
                    raise self.error(f"{section}.{unknown[0]}", "is not a known key")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(reader: _Reader, path: str, value: Any, kind: str) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise reader.error(path, f"must be an integer, got {_show(value)}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise reader.error(path, f"must be a number, got {_show(value)}")
        if not math.isfinite(value):
            raise reader.error(path, f"must be finite, got {value}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise reader.error(path, f"must be a string, got {_show(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise reader.error(path, f"must be true or false, got {_show(value)}")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise reader.error(path, f"must be a table, got {_show(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise reader.error(path, f"must be a list, got {_show(value)}")
        return value
    return value  # "any"


def _positive(v):
    return None if v > 0 else "must be > 0"


def _nonnegative(v):
    return None if v >= 0 else "must be >= 0"


def _at_least(lo):
    return lambda v: None if v >= lo else f"must be >= {lo}"


def _one_of(options):
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _numeric_matrix(reader: _Reader, path: str, value: Any, rows: int | None, cols: int) -> np.ndarray:
    if not isinstance(value, list) or any(not isinstance(r, list) for r in value):
        raise reader.error(path, f"must be a list of rows of {cols} numbers, got {_show(value)}")
    if rows is not None and len(value) != rows:
        raise reader.error(path, f"must have {rows} rows (one per node), got {len(value)}")
    for k, row in enumerate(value):
        if len(row) != cols:
            raise reader.error(path, f"row {k} must have {cols} numbers (ambient coordinates), got {len(row)}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise reader.error(path, f"row {k} must hold finite numbers, got {_show(v)}")
    return np.asarray(value, dtype=np.float64)


def _anchor_index(labels: list, node: Any) -> int:
    index = {label: i for i, label in enumerate(labels)}
    if node in index:
        return index[node]
    if str(node) in index:  # GraphML labels are strings
        return index[str(node)]
    raise KeyError(node)


SECTIONS = ("manifold", "graph", "anchor", "anchors", "init", "dynamics", "record", "run", "agents", "live")
TOP_LEVEL_KEYS = ("name", "description")

# Tolerance for explicit coordinates typed by hand: they are projected exactly afterwards.
ON_MANIFOLD_ATOL = 1e-4


def parse_override(text: str) -> tuple[str, Any]:
    """``"dynamics.steps=500"`` -> ("dynamics.steps", 500); the value is read as TOML, else a string."""
    if "=" not in text:
        raise ScenarioError("--set", None, f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError("--set", None, f"expected key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


_INDEXED = re.compile(r"^(.+)\[(\d+)\]$")


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...], file: str) -> dict:
    """Set ``key=value`` overrides; ``anchors[1].coupling`` reaches into an array of tables."""
    data = copy.deepcopy(data)
    for text in overrides:
        key, value = parse_override(text)
        table = data
        parts = key.split(".")
        for part in parts[:-1]:
            indexed = _INDEXED.match(part)
            if indexed:
                name, k = indexed.group(1), int(indexed.group(2))
                items = table.get(name)
                if not isinstance(items, list) or k >= len(items) or not isinstance(items[k], dict):
                    have = len(items) if isinstance(items, list) else 0
                    raise ScenarioError(file, key, f"cannot be set: {name} has {have} tables, no [{k}]")
                table = items[k]
                continue
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ScenarioError(file, key, f"cannot be set: {part} is not a table")
            table = nxt
        table[parts[-1]] = value
    return data


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, validate and resolve a scenario file (graph included).

    Parameters
    ----------
    path : path to a TOML file.
    overrides : ``"key=value"`` strings applied before validation (the CLI's ``--set``).

    Raises
    ------
    ScenarioError
        for anything wrong with the file, with the file and the key in its message.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, None, "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(file, None, "is a directory, not a scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(file, None, f"cannot be read: {e}") from None
    return parse_scenario(text, file=file, base=path.parent, overrides=overrides)


def parse_scenario(
    text: str, file: str = "<scenario>", base: Path | None = None, overrides=(), seeds: tuple[int, ...] | None = None
) -> Scenario:
    """Like ``load_scenario``, from TOML text; relative graph paths resolve against ``base``.

    ``seeds`` replaces the file's ``run.seed``/``run.seeds`` (what a sweep runs).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(file, None, f"is not valid TOML: {e}") from None
    data = apply_overrides(data, overrides, file)
    if seeds is not None and isinstance(data.get("run", {}), dict):
        run = data.setdefault("run", {})
        run.pop("seed", None)
        run["seeds"] = list(seeds)
    r = _Reader(file, data)
    base = Path(".") if base is None else base
    r.check_top_level(SECTIONS, TOP_LEVEL_KEYS)

    name = r.get("", "name", "str", Path(file).stem)
    description = r.get("", "description", "str", "")

    # A live scenario's states are the model's embeddings: [manifold] and [dynamics] then
    # only serve `hivemind run` on the same graph, so they may be left out.
    live_mode = "live" in data
    mkind = r.get("manifold", "kind", "str", "sphere" if live_mode else ..., check=_one_of(tuple(MANIFOLDS)))
    dim = r.get("manifold", "dim", "int", 2 if live_mode else ..., check=_at_least(1))
    manifold = get_manifold(mkind, dim)

    gkind = r.get("graph", "kind", "str")
    gseed = r.get("graph", "seed", "int", 0)
    directed = r.get("graph", "directed", "bool", False)
    n = r.get("graph", "n", "int", None, check=_at_least(2))
    params, edges, gpath, direct = {}, None, None, None
    try:
        if gkind == "edges":
            if n is None:
                raise r.error("graph.n", "is required with graph.kind = 'edges'")
            edges = r.get("graph", "edges", "list")
            graph = graphs.from_edges(n, edges, directed)
        elif gkind == "file":
            gpath = r.get("graph", "path", "str")
            resolved = Path(gpath) if Path(gpath).is_absolute() else base / gpath
            graph = graphs.from_file(resolved, directed if "directed" in r.table("graph") else None)
            if n is not None and n != graph.number_of_nodes():
                raise r.error("graph.n", f"is {n} but {gpath} has {graph.number_of_nodes()} nodes")
        elif gkind in graphs.ARRAY_GENERATORS:
            params = r.get("graph", "params", "table", {})
            direct = graphs.from_arrays_generator(gkind, n, params, gseed)
            graph = None
        else:
            params = r.get("graph", "params", "table", {})
            graph = graphs.from_generator(gkind, n, params, gseed)
    except graphs.GraphError as e:
        raise r.error(e.key, e.message) from None
    labels = direct.labels if graph is None else list(graph.nodes)
    n_nodes = len(labels)
    if n_nodes < 2:
        raise r.error("graph", f"must have at least 2 nodes, got {n_nodes}")

    anchor_tables = _anchor_tables(r)
    ikind = r.get("init", "kind", "str", "cap", check=_one_of(("random", "cap", "explicit")))
    spread_check = _positive
    if mkind == "sphere":
        spread_check = lambda v: _positive(v) or (None if v <= math.pi else "must be <= pi on the sphere")  # noqa: E731
    spread = r.get("init", "spread", "float", 1.0, check=spread_check)
    iseed = r.get("init", "seed", "int", None)
    states = None
    if ikind == "explicit":
        raw_states = r.get("init", "states", "any")
        matrix = _numeric_matrix(r, "init.states", raw_states, n_nodes, manifold.ambient_dim)
        if not np.all(np.asarray(manifold.belongs(matrix, ON_MANIFOLD_ATOL))):
            bad = int(np.argmin(np.asarray(manifold.belongs(matrix, ON_MANIFOLD_ATOL))))
            raise r.error("init.states", f"row {bad} is not on the {mkind} (within {ON_MANIFOLD_ATOL})")
        states = matrix.tolist()

    anchors = tuple(_read_anchor(r, key, t, labels, manifold, ikind) for key, t in anchor_tables)
    seen: dict[int, str] = {}
    for (key, _), spec in zip(anchor_tables, anchors, strict=True):
        i = _anchor_index(labels, spec.node)
        if i in seen:
            raise r.error(f"{key}.node", f"names node {spec.node!r}, which {seen[i]} already anchors; one anchor per node")
        seen[i] = key

    rule = r.get("dynamics", "rule", "str", "gradient")
    if rule not in BUILTIN_RULES:
        import optax

        if not callable(getattr(optax, rule, None)) or rule.startswith("_"):
            raise r.error(
                "dynamics.rule",
                f"must be one of {', '.join(BUILTIN_RULES)} or an optax optimizer (adam, sgd, ...), got {_show(rule)}",
            )
    step_size = r.get("dynamics", "step_size", "float", 0.1 if live_mode else ..., check=_positive)
    steps = r.get("dynamics", "steps", "int", 100 if live_mode else ..., check=_at_least(1))
    noise = r.get("dynamics", "noise", "float", 0.0, check=_nonnegative)
    schedule = r.get("dynamics", "noise_schedule", "str", "constant", check=_one_of(SCHEDULES))
    decay = r.get("dynamics", "noise_decay", "float", 100.0, check=_positive)
    prob = r.get("dynamics", "gossip_prob", "float", 0.5, check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")
    options = r.get("dynamics", "options", "table", {})
    if options and rule in BUILTIN_RULES:
        raise r.error("dynamics.options", f"applies to optax optimizers only, not to rule {rule!r}")
    _check_optax_options(r, rule, options)

    confidence = r.get("dynamics", "confidence", "float", None, check=_positive)
    every = r.get("record", "every", "int", 10, check=_at_least(1))
    cluster_tol = r.get("record", "cluster_tol", "float", 0.05, check=_positive)

    run_table = r.table("run")
    if "seed" in run_table and "seeds" in run_table:
        raise r.error("run.seeds", "cannot be given together with run.seed")
    if "seeds" in run_table:
        seeds = r.get("run", "seeds", "list")
        if not seeds:
            raise r.error("run.seeds", "must not be empty")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise r.error("run.seeds", f"must be non-negative integers, got {_show(s)}")
        if len(set(seeds)) != len(seeds):
            raise r.error("run.seeds", f"must not repeat a seed, got {_show(seeds)}")
        seeds = tuple(seeds)
    else:
        seeds = (r.get("run", "seed", "int", 0, check=_nonnegative),)
    precision = r.get("run", "precision", "str", "float32", check=_one_of(("float32", "float64")))
    checkpoint_every = r.get("run", "checkpoint_every", "int", None, check=_nonnegative)
    shard = r.get("run", "shard", "str", "none", check=_one_of(("none", "seeds", "agents")))

    inertia = r.get("agents", "inertia", "any", 1.0)
    if inertia in ("degree", "active"):
        values = []
    elif isinstance(inertia, list):
        if len(inertia) != n_nodes:
            raise r.error("agents.inertia", f"must have one value per node ({n_nodes}), got {len(inertia)}")
        values = inertia
    else:
        values = [inertia]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise r.error("agents.inertia", f"must be 'degree', 'active' or finite numbers > 0, got {_show(v)}")
    for node_label, m in [] if graph is None else graph.nodes(data="inertia"):
        if m is not None:
            try:
                ok = float(m) > 0 and math.isfinite(float(m))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise r.error("graph.path", f"node {node_label} has inertia {m!r}; it must be a finite number > 0")

    stubbornness = r.get("agents", "stubbornness", "any", 0.0)
    _stubbornness_vector(stubbornness, labels, [_anchor_index(labels, a.node) for a in anchors], r)

    live = None
    if live_mode:
        from hivemind.live.config import parse_live

        live = parse_live(r, labels, _anchor_index(labels, anchors[0].node))
    r.finish(SECTIONS)

    by_node = inertia if isinstance(inertia, (int, float)) and not isinstance(inertia, bool) else 1.0
    if graph is None:
        arrays = direct._replace(inertia=np.asarray(values if isinstance(inertia, list) else [by_node] * n_nodes, float))
    else:
        arrays = graph_arrays(
            graph, {lab: v for lab, v in zip(graph.nodes, inertia, strict=False)} if isinstance(inertia, list) else by_node
        )
    if inertia == "degree":
        arrays = arrays._replace(inertia=degree_inertia(arrays))

    return Scenario(
        name=name,
        description=description,
        manifold=ManifoldSpec(mkind, dim),
        graph=GraphSpec(gkind, n, params, gseed, edges, directed or arrays.directed, gpath),
        anchors=anchors,
        init=InitSpec(ikind, spread, states, iseed),
        dynamics=DynamicsSpec(rule, step_size, steps, noise, schedule, decay, prob, options, confidence),
        record=RecordSpec(every, cluster_tol),
        run=RunSpec(seeds, precision, checkpoint_every, shard),
        agents=AgentsSpec(
            tuple(inertia) if isinstance(inertia, list) else inertia if isinstance(inertia, str) else float(inertia),
            tuple(stubbornness) if isinstance(stubbornness, list) else stubbornness,
        ),
        live=live,
        source=file,
        text=text,
        overrides=tuple(overrides),
        base=str(base),
        arrays=arrays,
    )


def _anchor_tables(r: _Reader) -> list[tuple[str, dict]]:
    """(key path, table) of every anchor: ``[anchor]`` (one) or ``[[anchors]]`` (several)."""
    data = r.data
    if "anchors" in data:
        if "anchor" in data:
            raise r.error("anchors", "cannot be given together with [anchor]: use one [anchor] or several [[anchors]]")
        tables = data["anchors"]
        r.used.setdefault("anchors", set())
        if not isinstance(tables, list):
            raise r.error("anchors", f"must be an array of tables ([[anchors]] blocks), got {_show(tables)}")
        if not tables:
            raise r.error("anchors", "must hold at least one anchor")
        for k, t in enumerate(tables):
            if not isinstance(t, dict):
                raise r.error(f"anchors[{k}]", f"must be a table with node, state and coupling, got {_show(t)}")
        return [(f"anchors[{k}]", t) for k, t in enumerate(tables)]
    return [("anchor", r.table("anchor"))]


ANCHOR_KEYS = ("node", "state", "coupling", "seed")


def _read_anchor(r: _Reader, key: str, table: dict, labels: list, manifold, ikind: str) -> AnchorSpec:
    unknown = sorted(set(table) - set(ANCHOR_KEYS))
    if unknown:
        raise r.error(f"{key}.{unknown[0]}", f"is not a known key (keys: {', '.join(ANCHOR_KEYS)})")
    if key == "anchor":
        r.used.setdefault("anchor", set()).update(table)

    def get(name, kind, default, check=None):
        if name not in table:
            return default
        value = _typed(r, f"{key}.{name}", table[name], kind)
        problem = check(value) if check else None
        if problem:
            raise r.error(f"{key}.{name}", f"{problem}, got {_show(value)}")
        return value

    node = get("node", "any", 0)
    try:
        _anchor_index(labels, node)
    except (KeyError, TypeError):
        raise r.error(f"{key}.node", f"is not a node of the graph ({len(labels)} nodes), got {_show(node)}") from None
    coupling = get("coupling", "float", 1.0, _nonnegative)
    seed = get("seed", "int", 0)
    state = get("state", "any", "init" if ikind == "explicit" else "random")
    if isinstance(state, str):
        if state not in ("random", "init"):
            raise r.error(
                f"{key}.state", f"must be 'random', 'init' or a list of {manifold.ambient_dim} coordinates, got {_show(state)}"
            )
        if state == "init" and ikind != "explicit":
            raise r.error(f"{key}.state", "can be 'init' only with init.kind = 'explicit'")
    else:
        vec = _numeric_matrix(r, f"{key}.state", [state] if isinstance(state, list) else state, 1, manifold.ambient_dim)
        if not bool(np.asarray(manifold.belongs(vec, ON_MANIFOLD_ATOL))[0]):
            raise r.error(f"{key}.state", f"is not on the {manifold.name} (within {ON_MANIFOLD_ATOL})")
        state = vec[0].tolist()
    return AnchorSpec(node, state, coupling, seed)


def _stubbornness_vector(value: Any, labels: list, anchors, r: _Reader | None = None) -> np.ndarray:
    """theta per node index from a number, a list (one per node) or a table keyed by node; 0 at anchors."""
    n = len(labels)

    def bad(message: str, key: str = "agents.stubbornness") -> ScenarioError:
        return r.error(key, message) if r is not None else ScenarioError(None, key, message)

    def number(v, key="agents.stubbornness") -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
            raise bad(f"must be numbers in [0, 1], got {_show(v)}", key)
        return float(v)

    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise bad(f"must have one value per node ({n}), got {len(value)}")
        theta = np.asarray([number(v) for v in value])
    elif isinstance(value, dict):
        theta = np.zeros(n)
        for node, v in value.items():
            try:
                i = _anchor_index(labels, node)
            except KeyError:
                try:
                    i = _anchor_index(labels, int(node))
                except (KeyError, ValueError):
                    raise bad(f"is not a node of the graph, got {_show(node)}", f"agents.stubbornness.{node}") from None
            theta[i] = number(v, f"agents.stubbornness.{node}")
    else:
        theta = np.full(n, number(value))
    theta[list(anchors)] = 0.0
    return theta


def degree_inertia(arrays: GraphArrays) -> np.ndarray:
    """m_i = the weight node i hears (its weighted in-degree), 1 where it hears nothing.

    With this inertia the gradient step moves each agent toward the weighted mean of
    its neighbours (DeGroot's normalisation), so one step size is stable on graphs
    whose degrees span orders of magnitude: the spectrum of M^-1 L lies in [0, 2].
    """
    heard = np.bincount(arrays.dst, arrays.weight, minlength=arrays.n_nodes)
    if not arrays.directed:
        heard += np.bincount(arrays.src, arrays.weight, minlength=arrays.n_nodes)
    return np.where(heard > 0, heard, 1.0)


def _check_optax_options(r: _Reader, rule: str, options: dict) -> None:
    """Options by name and type first (cheap), then the optimizer itself, built and stepped once."""
    if rule in BUILTIN_RULES:
        return
    import inspect

    import optax

    from hivemind.engine.rules import optimizer_problem

    try:
        accepted = set(inspect.signature(getattr(optax, rule)).parameters)
    except (TypeError, ValueError):
        accepted = None
    for key, value in options.items():
        if accepted is not None and (key not in accepted or key == "learning_rate"):
            hint = " (the learning rate is dynamics.step_size)" if key == "learning_rate" else ""
            raise r.error(f"dynamics.options.{key}", f"is not an option of optax.{rule}{hint}")
        if isinstance(value, (dict, list)):
            raise r.error(f"dynamics.options.{key}", f"must be a number, string or boolean, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise r.error(f"dynamics.options.{key}", f"must be finite, got {value}")
    problem = optimizer_problem(rule, {})
    if problem:
        raise r.error("dynamics.rule", f"{rule!r} is not usable as an optax optimizer: optax.{rule}(learning_rate) {problem}")
    for key, value in options.items():
        problem = optimizer_problem(rule, {key: value})
        if problem:
            raise r.error(f"dynamics.options.{key}", f"= {_show(value)} is refused: optax.{rule} {problem}")
    if len(options) > 1:
        problem = optimizer_problem(rule, options)
        if problem:
            raise r.error("dynamics.options", f"together are refused: optax.{rule} {problem}")
