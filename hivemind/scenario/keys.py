"""Every key a scenario file may hold outside [live], declared once: how the reader types it, its
default, the check its value must pass (each problem one line naming the file and the key), and
what the reference says of it.

The parser reads keys only through these declarations (``Reader.read``; a read of an undeclared
key is a programming error), and the reference of scenario keys is generated from them (with
``hivemind.live.config.LIVE_KEYS`` for [live]); a test parses every key with its example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from hivemind.scenario.names import BUILTIN_RULES, EQUILIBRIUM_OBJECTIVES, HORIZON_OBJECTIVES, MANIFOLD_KINDS, SCHEDULES
from hivemind.scenario.reader import at_least, nonnegative, one_of, positive

REQUIRED = ...  # a key without a default (the parser may still give one, as live mode's)


class Key(NamedTuple):
    name: str  # section.key ("" section: top level)
    type: str
    default: str  # as TOML would write it; "required" or "-" (absent) where there is none
    allowed: str
    meaning: str
    example: str  # a TOML value the parser accepts (with ``context``, the overrides it needs)
    context: tuple[str, ...] = ()  # overrides, or "drop:SECTION" for a table that must be absent
    kind: str = "any"  # how the reader types the value: int, float, str, bool, table, list, any
    value: Any = REQUIRED  # the default the parser uses (None: absent); ``default`` shows it
    check: Callable[[Any], str | None] | None = None  # the problem with a value, or None

    @property
    def section(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def key(self) -> str:
        return self.name.rpartition(".")[2]


def in_unit_interval(v) -> str | None:
    return None if 0 < v <= 1 else "must be in (0, 1]"


SCENARIO_KEYS: tuple[Key, ...] = (
    Key(
        "name", "string", "the file's stem", "any", "the scenario's name, used in outputs and figure titles", '"demo"', kind="str"
    ),
    Key("description", "string", '""', "any", "one line about the scenario", '"a test"', kind="str", value=""),
    Key(
        "manifold.kind",
        "string",
        "required (sphere in live mode)",
        ", ".join(MANIFOLD_KINDS),
        "the Riemannian manifold the states live on",
        '"hyperbolic"',
        kind="str",
        check=one_of(MANIFOLD_KINDS),
    ),
    Key(
        "manifold.dim",
        "integer",
        "required (2 in live mode)",
        ">= 1",
        "its intrinsic dimension",
        "3",
        kind="int",
        check=at_least(1),
    ),
    Key(
        "graph.kind",
        "string",
        "required",
        "a networkx generator, preferential_attachment, groups, edges, file",
        "how the interaction graph is built",
        '"preferential_attachment"',
        kind="str",
    ),
    Key(
        "graph.n",
        "integer",
        "-",
        ">= 2",
        "the number of nodes (the anchor included)",
        "12",
        kind="int",
        value=None,
        check=at_least(2),
    ),
    Key(
        "graph.params",
        "table",
        "{}",
        "the generator's keyword arguments",
        "e.g. { m = 3 } for barabasi_albert",
        "{ m = 2 }",
        ('graph.kind="barabasi_albert"',),
        kind="table",
        value={},
    ),
    Key("graph.seed", "integer", "0", "any", "the seed of a random graph generator", "3", kind="int", value=0),
    Key(
        "graph.directed",
        "boolean",
        "false",
        "true, false",
        "edges carry influence one way (dst hears src)",
        "true",
        ("drop:graph", 'graph.kind="edges"', "graph.n=3", "graph.edges=[[0, 1], [1, 2]]"),
        kind="bool",
        value=False,
    ),
    Key(
        "graph.edges",
        "list",
        "-",
        "[[i, j], ...] or [[i, j, w], ...]",
        'the edges, with graph.kind = "edges"',
        "[[0, 1], [1, 2], [2, 0]]",
        ("drop:graph", 'graph.kind="edges"', "graph.n=3"),
        kind="list",
    ),
    Key(
        "graph.path",
        "string",
        "-",
        "a GraphML file or lines 'u v [w]'",
        'the graph file, with graph.kind = "file"',
        '"island.edges"',
        ("drop:graph", 'graph.kind="file"'),
        kind="str",
    ),
    Key(
        "graph.size",
        "integer",
        "-",
        ">= 2",
        'agents per group, with graph.kind = "groups" (disjoint complete groups)',
        "3",
        ("drop:graph", 'graph.kind="groups"', "graph.count=4"),
        kind="int",
        check=at_least(2),
    ),
    Key(
        "graph.count",
        "integer",
        "-",
        ">= 1",
        'the number of groups, with graph.kind = "groups"',
        "4",
        ("drop:graph", 'graph.kind="groups"', "graph.size=3"),
        kind="int",
        check=at_least(1),
    ),
    Key("anchor.node", "node label", "0", "a node of the graph", "the node with infinite inertia", "1", value=0),
    Key(
        "anchor.state",
        "string or list",
        '"random"',
        '"random", "init", or ambient coordinates',
        "where the anchor sits",
        '"random"',
        value="random",
    ),
    Key(
        "anchor.coupling",
        "number",
        "1.0",
        ">= 0",
        "kappa: the weight of the anchor's edges (0: nobody hears it)",
        "2.0",
        kind="float",
        value=1.0,
        check=nonnegative,
    ),
    Key("anchor.seed", "integer", "0", "any", "the seed of a random anchor state", "5", kind="int", value=0),
    Key(
        "anchors",
        "array of tables",
        "-",
        "[[anchors]] blocks with node, state, coupling, seed",
        "several anchors instead of [anchor]",
        "[{ node = 0 }, { node = 3 }]",
        ("drop:anchor",),
    ),
    Key(
        "init.kind",
        "string",
        '"cap"',
        "random, cap, explicit",
        "initial states: uniform, a geodesic ball of radius spread around the anchor, or given",
        '"random"',
        kind="str",
        value="cap",
        check=one_of(("random", "cap", "explicit")),
    ),
    Key(
        "init.spread",
        "number",
        "1.0",
        "> 0 (<= pi on the sphere)",
        "the cap's radius",
        "0.5",
        kind="float",
        value=1.0,
        check=positive,
    ),
    Key(
        "init.seed",
        "integer",
        "- (drawn from each run seed)",
        "any",
        "pin the initial configuration across run seeds",
        "7",
        kind="int",
        value=None,
    ),
    Key(
        "init.states",
        "list of rows",
        "-",
        "one row of ambient coordinates per node",
        'the states, with init.kind = "explicit"',
        "[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]",
        ("drop:graph", 'init.kind="explicit"', 'graph.kind="cycle_graph"', "graph.n=3", "manifold.dim=2"),
        kind="any",
    ),
    Key(
        "init.path",
        "string",
        "-",
        "a text file: one row of ambient coordinates per node, in node order",
        'the states from a file (whitespace- or comma-separated), with init.kind = "explicit"; '
        "relative to the scenario's folder",
        '"fj_karate_opinions.txt"',
        (
            "drop:graph",
            'graph.kind="karate_club_graph"',
            'manifold.kind="euclidean"',
            "manifold.dim=1",
            'init.kind="explicit"',
        ),
        kind="str",
        value=None,
    ),
    Key(
        "dynamics.rule",
        "string",
        '"gradient"',
        ", ".join(BUILTIN_RULES) + ", or an optax optimizer (adam, sgd, ...)",
        "the update rule of every agent",
        '"adam"',
        kind="str",
        value="gradient",
    ),
    Key(
        "dynamics.step_size",
        "number",
        "required (0.1 in live mode)",
        "> 0",
        "eta: the step size (an optax learning rate)",
        "0.05",
        kind="float",
        check=positive,
    ),
    Key(
        "dynamics.steps",
        "integer",
        "required (100 in live mode)",
        ">= 1",
        "how many steps to run",
        "50",
        kind="int",
        check=at_least(1),
    ),
    Key(
        "dynamics.noise",
        "number",
        "0.0",
        ">= 0",
        "sigma: the scale of the tangent noise of the noisy rules",
        "0.01",
        kind="float",
        value=0.0,
        check=nonnegative,
    ),
    Key(
        "dynamics.noise_schedule",
        "string",
        '"constant"',
        ", ".join(SCHEDULES),
        "how the noise decays over steps",
        '"exponential"',
        kind="str",
        value="constant",
        check=one_of(SCHEDULES),
    ),
    Key(
        "dynamics.noise_decay",
        "number",
        "100.0",
        "> 0",
        "the schedule's time constant in steps",
        "50.0",
        kind="float",
        value=100.0,
        check=positive,
    ),
    Key(
        "dynamics.gossip_prob",
        "number",
        "0.5",
        "(0, 1]",
        "the share of edges that act at a gossip step",
        "0.3",
        kind="float",
        value=0.5,
        check=in_unit_interval,
    ),
    Key(
        "dynamics.options",
        "table",
        "{}",
        "keyword arguments of the optax optimizer",
        "e.g. { b1 = 0.8 } for adam",
        "{ b1 = 0.8 }",
        ('dynamics.rule="adam"',),
        kind="table",
        value={},
    ),
    Key(
        "dynamics.confidence",
        "number",
        "- (every edge acts)",
        "> 0",
        "bounded confidence: edges act only between agents closer than this",
        "0.3",
        kind="float",
        value=None,
        check=positive,
    ),
    Key(
        "record.every",
        "integer",
        "10",
        ">= 1",
        "record every k-th step (and always the last)",
        "5",
        kind="int",
        value=10,
        check=at_least(1),
    ),
    Key(
        "record.cluster_tol",
        "number",
        "0.05",
        "> 0",
        "agents closer than this across an edge are in one cluster",
        "0.1",
        kind="float",
        value=0.05,
        check=positive,
    ),
    Key("run.seed", "integer", "0", ">= 0", "the run's seed (JAX PRNG key)", "3", kind="int", value=0, check=nonnegative),
    Key(
        "run.seeds",
        "list of integers",
        "-",
        "distinct, >= 0",
        "several seeds in one batched computation (instead of run.seed)",
        "[0, 1, 2]",
        ("drop:run",),
        kind="list",
    ),
    Key(
        "run.precision",
        "string",
        '"float32"',
        "float32, float64",
        "the floating-point precision of the engine",
        '"float64"',
        kind="str",
        value="float32",
        check=one_of(("float32", "float64")),
    ),
    Key(
        "run.checkpoint_every",
        "integer",
        "- (about every minute)",
        ">= 0",
        "steps between checkpoints (0: none)",
        "100",
        kind="int",
        value=None,
        check=nonnegative,
    ),
    Key(
        "run.shard",
        "string",
        '"none"',
        "none, seeds, agents",
        "spread the run over jax.devices() or processes",
        '"seeds"',
        kind="str",
        value="none",
        check=one_of(("none", "seeds", "agents")),
    ),
    Key(
        "run.kernel",
        "string",
        '"auto"',
        "auto, fused, jax",
        "the pair kernel: fused (C++ through jax.ffi, on the CPU where it was built), jax (pure JAX: GPUs, "
        "several devices, gradients); auto is fused where it can run, else jax",
        '"jax"',
        kind="str",
        value="auto",
        check=one_of(("auto", "fused", "jax")),
    ),
    Key(
        "agents.inertia",
        "number, list or string",
        "1.0",
        '> 0, one per node, "degree" or "active"',
        "m_i: how hard each agent is to move",
        '"degree"',
        value=1.0,
    ),
    Key(
        "agents.stubbornness",
        "number, list, table or string",
        "0.0",
        '[0, 1], one per node, { node = value } or "inverse_degree" (1 / (1 + weighted degree))',
        "theta: the pull back to each agent's initial state (Friedkin-Johnsen); "
        '"inverse_degree" with agents.inertia = "degree" is Musco et al.\'s model, z = (I + L)^-1 s',
        "0.2",
        value=0.0,
    ),
    Key(
        "design.objective",
        "string",
        "-",
        ", ".join(EQUILIBRIUM_OBJECTIVES + HORIZON_OBJECTIVES),
        "the objective hivemind design chose this scenario for: hivemind run measures it at the end (manifest.json's design)",
        '"polarization_disagreement"',
        ("design.value=1.0",),
        kind="str",
        value=None,
        check=one_of(EQUILIBRIUM_OBJECTIVES + HORIZON_OBJECTIVES),
    ),
    Key(
        "design.value",
        "number",
        "-",
        "any",
        "the objective's value hivemind design found, which the run is checked against",
        "0.4335",
        ('design.objective="diversity"',),
        kind="float",
        value=None,
    ),
    Key(
        "design.neutral",
        "number",
        "- (the mean opinion)",
        "any",
        "the opinion polarization is measured about (hivemind design --neutral)",
        "0.0",
        ('design.objective="polarization_disagreement"',),
        kind="float",
        value=None,
    ),
)

KEYS = {k.name: k for k in SCENARIO_KEYS}

SECTIONS_WITH_FREE_KEYS = ("graph.params", "dynamics.options")
