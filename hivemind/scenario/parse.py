"""Scenario files: TOML in, validated frozen dataclasses out.

Every problem with a file is a ``ScenarioError`` that renders as one line naming the
file and the key, e.g. ``scenarios/x.toml: dynamics.step_size must be > 0, got -1``.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hivemind.scenario import graphs
from hivemind.scenario.graphs import GraphArrays, graph_arrays
from hivemind.scenario.keys import KEYS
from hivemind.scenario.names import BUILTIN_RULES, ambient_dim, on_manifold
from hivemind.scenario.reader import Reader, numeric_matrix, positive, typed
from hivemind.scenario.spec import (
    AgentsSpec,
    AnchorSpec,
    DesignSpec,
    DynamicsSpec,
    GraphSpec,
    InitSpec,
    ManifoldSpec,
    RecordSpec,
    RunSpec,
    Scenario,
    ScenarioError,
    node_index,
    show,
    stubbornness_vector,
)


class _Geometry:
    """What the reader needs of a manifold (its name, coordinates per point, membership), without jax."""

    def __init__(self, kind: str, dim: int):
        self.name, self.dim, self.ambient_dim = kind, dim, ambient_dim(kind, dim)

    def belongs(self, x, atol: float) -> np.ndarray:
        return on_manifold(self.name, self.dim, x, atol)


# The [dynamics] numbers the engine traces, with the check each must pass: a sweep point that
# changes only these is the scenario with them replaced (``scenario.grid``), not a re-read file.
TRACED_DYNAMICS = {k: KEYS[f"dynamics.{k}"].check for k in ("step_size", "noise", "noise_decay", "gossip_prob", "confidence")}

SECTIONS = ("manifold", "graph", "anchor", "anchors", "init", "dynamics", "record", "run", "agents", "design", "live")
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

    ``seeds`` replaces the file's ``run.seed``/``run.seeds`` (what a sweep runs). Sections
    are read in a fixed order, so that of several problems the same one is reported first.
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
    r = Reader(file, data, KEYS)
    base = Path(".") if base is None else base
    r.check_top_level(SECTIONS, TOP_LEVEL_KEYS)

    name = r.read("name", Path(file).stem)
    description = r.read("description")
    # A live scenario's states are the model's embeddings: [manifold] and [dynamics] then
    # only serve `hivemind run` on the same graph, so they may be left out.
    live_mode = "live" in data
    mkind = r.read("manifold.kind", "sphere" if live_mode else ...)
    dim = r.read("manifold.dim", 2 if live_mode else ...)
    manifold = _Geometry(mkind, dim)
    g = _read_graph(r, base)
    anchor_tables = _anchor_tables(r)
    init = _read_init(r, manifold, len(g.labels), base)
    anchors = _read_anchors(r, anchor_tables, g.labels, manifold, init.kind)
    dynamics = _read_dynamics(r, live_mode)
    record = RecordSpec(r.read("record.every"), r.read("record.cluster_tol"))
    run = _read_run(r)
    inertia, values = _read_inertia(r, g)
    stubbornness = r.read("agents.stubbornness")
    design = None
    if "design" in r.data:
        objective = r.read("design.objective")
        if objective is None:
            raise r.error("design.objective", "is required in [design]")
        design = DesignSpec(objective, r.read("design.value"), r.read("design.neutral"))
    # [live] stays a raw table here: ``hivemind.live.read_live`` reads it (live depends on the
    # scenario, never the reverse), so its keys are not checked by ``finish``.
    live = dict(r.table("live")) if live_mode else None
    r.used["live"] = set(live or ())
    r.finish(SECTIONS)

    arrays = _arrays(g, inertia, values)
    if not anchor_tables_given(r.data) and not live_mode and np.all(stubbornness_vector(stubbornness, arrays, [], r) > 0):
        # Friedkin-Johnsen without an anchor: every agent is pulled back to its own start, so the
        # dynamics settle at (I - (I - Theta) W)^-1 Theta s; the default anchor would pin node 0.
        anchors = ()
        if init.kind == "cap":
            raise r.error("init.kind", 'is "cap" (a ball around the anchor), but this scenario has no anchor: give init.kind')
    stubbornness_vector(stubbornness, arrays, [node_index(g.labels, a.node) for a in anchors], r)
    return Scenario(
        name=name,
        description=description,
        manifold=ManifoldSpec(mkind, dim),
        graph=GraphSpec(g.kind, g.n, g.params, g.seed, g.edges, g.directed or arrays.directed, g.path),
        anchors=anchors,
        init=init,
        dynamics=dynamics,
        record=record,
        run=run,
        agents=AgentsSpec(
            tuple(inertia) if isinstance(inertia, list) else inertia if isinstance(inertia, str) else float(inertia),
            tuple(stubbornness) if isinstance(stubbornness, list) else stubbornness,
        ),
        live=live,
        design=design,
        source=file,
        text=text,
        overrides=tuple(overrides),
        base=str(base),
        arrays=arrays,
    )


class _Graph(NamedTuple):
    """[graph] as read: the keys as written, and the graph (networkx, or arrays from a fast generator)."""

    kind: str
    n: int | None
    params: dict
    seed: int
    edges: list | None
    directed: bool
    path: str | None
    graph: Any  # networkx graph, or None when ``direct`` holds the arrays
    direct: GraphArrays | None
    labels: list


def _read_graph(r: Reader, base: Path) -> _Graph:
    kind = r.read("graph.kind")
    seed = r.read("graph.seed")
    directed = r.read("graph.directed")
    n = r.read("graph.n")
    params, edges, path, direct = {}, None, None, None
    try:
        if kind == "edges":
            if n is None:
                raise r.error("graph.n", "is required with graph.kind = 'edges'")
            edges = r.read("graph.edges")
            graph = graphs.from_edges(n, edges, directed)
        elif kind == "file":
            path = r.read("graph.path")
            resolved = Path(path) if Path(path).is_absolute() else base / path
            graph = graphs.from_file(resolved, directed if r.given("graph.directed") else None)
            if n is not None and n != graph.number_of_nodes():
                raise r.error("graph.n", f"is {n} but {path} has {graph.number_of_nodes()} nodes")
        elif kind == "groups":
            size = r.read("graph.size")
            count = r.read("graph.count")
            if n is not None and n != size * count:
                raise r.error("graph.n", f"is {n} but {count} groups of {size} make {size * count} nodes (leave n out)")
            direct = graphs.disjoint_groups(size, count)
            params, graph = {"size": size, "count": count}, None
        elif kind in graphs.ARRAY_GENERATORS:
            params = r.read("graph.params")
            direct = graphs.from_arrays_generator(kind, n, params, seed)
            graph = None
        else:
            params = r.read("graph.params")
            graph = graphs.from_generator(kind, n, params, seed)
    except graphs.GraphError as e:
        raise r.error(e.key, e.message) from None
    labels = direct.labels if graph is None else list(graph.nodes)
    if len(labels) < 2:
        raise r.error("graph", f"must have at least 2 nodes, got {len(labels)}")
    return _Graph(kind, n, params, seed, edges, directed, path, graph, direct, labels)


def _states_file(r: Reader, base: Path) -> list:
    """init.path's rows: one per node, numbers separated by whitespace or commas, ``#`` comments."""
    path = r.read("init.path")
    resolved = Path(path) if Path(path).is_absolute() else base / path
    try:
        lines = resolved.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise r.error("init.path", f"cannot be read ({path}: {getattr(e, 'strerror', None) or e})") from None
    rows = []
    for k, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        try:
            rows.append([float(v) for v in text])
        except ValueError:
            raise r.error("init.path", f"{path} line {k} must hold numbers, got {show(line.strip())}") from None
    return rows


def _read_init(r: Reader, manifold: _Geometry, n_nodes: int, base: Path) -> InitSpec:
    kind = r.read("init.kind")
    spread_check = positive
    if manifold.name == "sphere":
        spread_check = lambda v: positive(v) or (None if v <= math.pi else "must be <= pi on the sphere")  # noqa: E731
    spread = r.read("init.spread", check=spread_check)
    seed = r.read("init.seed")
    states = None
    if r.given("init.path") and kind != "explicit":
        raise r.error("init.path", f'is read with init.kind = "explicit", got init.kind = {show(kind)}')
    if kind == "explicit":
        key, rows = ("init.path", _states_file(r, base)) if r.given("init.path") else ("init.states", r.read("init.states"))
        if key == "init.path" and r.given("init.states"):
            raise r.error("init.states", "cannot be given together with init.path: the states come from one of them")
        matrix = numeric_matrix(r, key, rows, n_nodes, manifold.ambient_dim)
        on = np.asarray(manifold.belongs(matrix, ON_MANIFOLD_ATOL))
        if not np.all(on):
            raise r.error("init.states", f"row {int(np.argmin(on))} is not on the {manifold.name} (within {ON_MANIFOLD_ATOL})")
        states = matrix.tolist()
    return InitSpec(kind, spread, states, seed)


def _read_anchors(r: Reader, tables: list[tuple[str, dict]], labels: list, manifold: _Geometry, ikind: str):
    anchors = tuple(_read_anchor(r, key, t, labels, manifold, ikind) for key, t in tables)
    seen: dict[int, str] = {}
    for (key, _), spec in zip(tables, anchors, strict=True):
        i = node_index(labels, spec.node)
        if i in seen:
            raise r.error(f"{key}.node", f"names node {spec.node!r}, which {seen[i]} already anchors; one anchor per node")
        seen[i] = key
    return anchors


def _read_dynamics(r: Reader, live_mode: bool) -> DynamicsSpec:
    rule = r.read("dynamics.rule")
    if rule not in BUILTIN_RULES:
        import optax

        if not callable(getattr(optax, rule, None)) or rule.startswith("_"):
            raise r.error(
                "dynamics.rule",
                f"must be one of {', '.join(BUILTIN_RULES)} or an optax optimizer (adam, sgd, ...), got {show(rule)}",
            )
    step_size = r.read("dynamics.step_size", 0.1 if live_mode else ...)
    steps = r.read("dynamics.steps", 100 if live_mode else ...)
    noise = r.read("dynamics.noise")
    schedule = r.read("dynamics.noise_schedule")
    decay = r.read("dynamics.noise_decay")
    prob = r.read("dynamics.gossip_prob")
    options = r.read("dynamics.options")
    if options and rule in BUILTIN_RULES:
        raise r.error("dynamics.options", f"applies to optax optimizers only, not to rule {rule!r}")
    _check_optax_options(r, rule, options)
    confidence = r.read("dynamics.confidence")
    return DynamicsSpec(rule, step_size, steps, noise, schedule, decay, prob, options, confidence)


def _read_run(r: Reader) -> RunSpec:
    table = r.table("run")
    if "seed" in table and "seeds" in table:
        raise r.error("run.seeds", "cannot be given together with run.seed")
    if "seeds" in table:
        seeds = r.read("run.seeds")
        if not seeds:
            raise r.error("run.seeds", "must not be empty")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise r.error("run.seeds", f"must be non-negative integers, got {show(s)}")
        if len(set(seeds)) != len(seeds):
            raise r.error("run.seeds", f"must not repeat a seed, got {show(seeds)}")
        seeds = tuple(seeds)
    else:
        seeds = (r.read("run.seed"),)
    precision = r.read("run.precision")
    checkpoint_every = r.read("run.checkpoint_every")
    shard = r.read("run.shard")
    kernel = r.read("run.kernel")
    return RunSpec(seeds, precision, checkpoint_every, shard, kernel)


def _read_inertia(r: Reader, g: _Graph) -> tuple[Any, list]:
    """agents.inertia as written, and its numbers (checked, with those of a graph file's nodes)."""
    inertia = r.read("agents.inertia")
    if inertia in ("degree", "active"):
        values = []
    elif isinstance(inertia, list):
        if len(inertia) != len(g.labels):
            raise r.error("agents.inertia", f"must have one value per node ({len(g.labels)}), got {len(inertia)}")
        values = inertia
    else:
        values = [inertia]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise r.error("agents.inertia", f"must be 'degree', 'active' or finite numbers > 0, got {show(v)}")
    for node_label, m in [] if g.graph is None else g.graph.nodes(data="inertia"):
        if m is not None:
            try:
                ok = float(m) > 0 and math.isfinite(float(m))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise r.error("graph.path", f"node {node_label} has inertia {m!r}; it must be a finite number > 0")
    return inertia, values


def _arrays(g: _Graph, inertia: Any, values: list) -> GraphArrays:
    by_node = inertia if isinstance(inertia, (int, float)) and not isinstance(inertia, bool) else 1.0
    if g.graph is None:
        n_nodes = len(g.labels)
        arrays = g.direct._replace(inertia=np.asarray(values if isinstance(inertia, list) else [by_node] * n_nodes, float))
    else:
        per_node = {lab: v for lab, v in zip(g.graph.nodes, inertia, strict=False)} if isinstance(inertia, list) else by_node
        arrays = graph_arrays(g.graph, per_node)
    if inertia == "degree":
        arrays = arrays._replace(inertia=degree_inertia(arrays))
    return arrays


def anchor_tables_given(data: dict) -> bool:
    return "anchor" in data or "anchors" in data


def _anchor_tables(r: Reader) -> list[tuple[str, dict]]:
    """(key path, table) of every anchor: ``[anchor]`` (one) or ``[[anchors]]`` (several)."""
    data = r.data
    if "anchors" in data:
        if "anchor" in data:
            raise r.error("anchors", "cannot be given together with [anchor]: use one [anchor] or several [[anchors]]")
        tables = data["anchors"]
        r.used.setdefault("anchors", set())
        if not isinstance(tables, list):
            raise r.error("anchors", f"must be an array of tables ([[anchors]] blocks), got {show(tables)}")
        if not tables:
            raise r.error("anchors", "must hold at least one anchor")
        for k, t in enumerate(tables):
            if not isinstance(t, dict):
                raise r.error(f"anchors[{k}]", f"must be a table with node, state and coupling, got {show(t)}")
        return [(f"anchors[{k}]", t) for k, t in enumerate(tables)]
    if "anchor" not in data and "live" in data:
        return []  # a live discussion without an anchor: agents read only one another
    return [("anchor", r.table("anchor"))]


ANCHOR_KEYS = tuple(k.key for k in KEYS.values() if k.section == "anchor")


def _read_anchor(r: Reader, key: str, table: dict, labels: list, manifold, ikind: str) -> AnchorSpec:
    unknown = sorted(set(table) - set(ANCHOR_KEYS))
    if unknown:
        raise r.error(f"{key}.{unknown[0]}", f"is not a known key (keys: {', '.join(ANCHOR_KEYS)})")
    if key == "anchor":
        r.used.setdefault("anchor", set()).update(table)

    def get(name, default=...):
        """anchor.NAME as declared, from this anchor's table (``[anchor]`` or one of ``[[anchors]]``)."""
        k = KEYS[f"anchor.{name}"]
        if name not in table:
            return k.value if default is ... else default
        value = typed(r, f"{key}.{name}", table[name], k.kind)
        problem = k.check(value) if k.check else None
        if problem:
            raise r.error(f"{key}.{name}", f"{problem}, got {show(value)}")
        return value

    node = get("node")
    try:
        node_index(labels, node)
    except (KeyError, TypeError):
        raise r.error(f"{key}.node", f"is not a node of the graph ({len(labels)} nodes), got {show(node)}") from None
    coupling = get("coupling")
    seed = get("seed")
    state = get("state", "init" if ikind == "explicit" else "random")
    if isinstance(state, str):
        if state not in ("random", "init"):
            raise r.error(
                f"{key}.state", f"must be 'random', 'init' or a list of {manifold.ambient_dim} coordinates, got {show(state)}"
            )
        if state == "init" and ikind != "explicit":
            raise r.error(f"{key}.state", "can be 'init' only with init.kind = 'explicit'")
    else:
        vec = numeric_matrix(r, f"{key}.state", [state] if isinstance(state, list) else state, 1, manifold.ambient_dim)
        if not bool(np.asarray(manifold.belongs(vec, ON_MANIFOLD_ATOL))[0]):
            raise r.error(f"{key}.state", f"is not on the {manifold.name} (within {ON_MANIFOLD_ATOL})")
        state = vec[0].tolist()
    return AnchorSpec(node, state, coupling, seed)


def _check_optax_options(r: Reader, rule: str, options: dict) -> None:
    """Options by name and type first (cheap), then the optimizer itself, built and stepped once."""
    if rule in BUILTIN_RULES:
        return
    import inspect

    import optax

    from hivemind.scenario.optax_rules import optimizer_problem

    try:
        accepted = set(inspect.signature(getattr(optax, rule)).parameters)
    except (TypeError, ValueError):
        accepted = None
    for key, value in options.items():
        if accepted is not None and (key not in accepted or key == "learning_rate"):
            hint = " (the learning rate is dynamics.step_size)" if key == "learning_rate" else ""
            raise r.error(f"dynamics.options.{key}", f"is not an option of optax.{rule}{hint}")
        if isinstance(value, (dict, list)):
            raise r.error(f"dynamics.options.{key}", f"must be a number, string or boolean, got {show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise r.error(f"dynamics.options.{key}", f"must be finite, got {value}")
    problem = optimizer_problem(rule, {})
    if problem:
        raise r.error("dynamics.rule", f"{rule!r} is not usable as an optax optimizer: optax.{rule}(learning_rate) {problem}")
    for key, value in options.items():
        problem = optimizer_problem(rule, {key: value})
        if problem:
            raise r.error(f"dynamics.options.{key}", f"= {show(value)} is refused: optax.{rule} {problem}")
    if len(options) > 1:
        problem = optimizer_problem(rule, options)
        if problem:
            raise r.error("dynamics.options", f"together are refused: optax.{rule} {problem}")


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
