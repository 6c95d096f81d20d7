"""What a scenario is: frozen dataclasses of plain data, and the identity of a run.

``fingerprint`` says when two runs compute the same thing, which is what resuming checks;
settings that only say *how* a run is executed (threads, batch sizes, devices, how often it is
checkpointed) stay out of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hivemind.errors import InputError
from hivemind.scenario.graphs import GraphArrays


class ScenarioError(InputError, ValueError):
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
    kernel: str = "auto"  # the pair kernel: "fused" (C++ through jax.ffi) or "jax"; "auto": fused where it can run


@dataclass(frozen=True)
class AgentsSpec:
    inertia: Any = 1.0  # a number, one number per node, "degree", or "active"
    stubbornness: Any = 0.0  # theta: a number, one per node, or a table keyed by node (as given)


@dataclass(frozen=True)
class DesignSpec:
    """[design]: the objective ``hivemind design`` chose this scenario for and the value it found;
    ``hivemind run`` measures the objective at the end and records both (manifest.json's design)."""

    objective: str
    value: float | None = None
    neutral: float | None = None  # polarization about this opinion instead of the mean


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
    # The [live] table: raw as read here, a ``hivemind.live.config.LiveSpec`` once ``hivemind.live.read_live`` has read it.
    live: Any = None
    design: DesignSpec | None = None
    source: str | None = None
    text: str = ""
    overrides: tuple[str, ...] = ()  # the --set values applied to ``text``
    base: str | None = field(default=None, compare=False, repr=False)  # where relative paths resolve
    arrays: GraphArrays | None = field(default=None, compare=False, repr=False)

    @property
    def anchor(self) -> AnchorSpec:
        """The first anchor: the anchor of a single-anchor scenario."""
        self._require_anchor()
        return self.anchors[0]

    @cached_property
    def anchor_indices(self) -> tuple[int, ...]:
        # Cached: the label lookup is O(N), and the engine asks once per seed. A live scenario without
        # an anchor stops here; a Friedkin-Johnsen one (every agent stubborn) has none and runs.
        if not self.anchors and not self.every_agent_stubborn:
            self._require_anchor()
        return tuple(node_index(self.arrays.labels, a.node) for a in self.anchors)

    @property
    def every_agent_stubborn(self) -> bool:
        return self.live is None and bool(np.all(stubbornness_vector(self.agents.stubbornness, self.arrays, []) > 0))

    @property
    def anchor_index(self) -> int:
        return self.anchor_indices[0]

    def _require_anchor(self) -> None:
        if not self.anchors:
            raise ScenarioError(
                self.source, "anchor", "is needed here; a scenario without one runs only as a live discussion (hivemind live)"
            )

    @cached_property
    def stubbornness(self) -> np.ndarray:
        """theta_i per node index (0 at anchors)."""
        anchors = [node_index(self.arrays.labels, a.node) for a in self.anchors]
        return stubbornness_vector(self.agents.stubbornness, self.arrays, anchors)

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
        # How a run is spread over devices and how often it is checkpointed change where it is
        # computed, not what: a checkpoint resumes on any layout. Their defaults keep the
        # fingerprints that runs written before this rule carry.
        data["run"] |= {"shard": "none", "checkpoint_every": None}
        # Which kernel computes the pull changes float rounding, not the dynamics: left out
        # (not defaulted), so that runs written before the key existed keep their fingerprint.
        data["run"].pop("kernel", None)
        # What the run is checked against, not what it computes.
        data.pop("design", None)
        if self.live is not None:
            # Settings that say how the texts are produced, not which (threads, batch sizes), and
            # what is computed after the conversation (the fit, the embeddings): none of them
            # changes a transcript, so none of them may refuse a resume.
            data["live"] = self.live.identity() if hasattr(self.live, "identity") else dict(self.live)
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
        if self.design is not None:
            out["design"] = asdict(self.design)
        if self.live is not None:
            out["live"] = self.live.to_dict() if hasattr(self.live, "to_dict") else dict(self.live)
        return out


def node_index(labels: list, node: Any) -> int:
    """The index of ``node`` among ``labels`` (GraphML labels are strings: "3" finds 3)."""
    index = {label: i for i, label in enumerate(labels)}
    if node in index:
        return index[node]
    if str(node) in index:  # GraphML labels are strings
        return index[str(node)]
    raise KeyError(node)


# Musco et al.'s stubbornness: 1 / (1 + weighted degree).
INVERSE_DEGREE = "inverse_degree"


def stubbornness_vector(value: Any, arrays: GraphArrays, anchors, r=None) -> np.ndarray:
    """theta per node index from a number, a list (one per node), a table keyed by node or
    ``"inverse_degree"`` (1 / (1 + the weight a node hears)); 0 at anchors."""
    labels = arrays.labels
    n = len(labels)

    def bad(message: str, key: str = "agents.stubbornness") -> ScenarioError:
        return r.error(key, message) if r is not None else ScenarioError(None, key, message)

    def number(v, key="agents.stubbornness") -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
            raise bad(f"must be numbers in [0, 1], got {show(v)}", key)
        return float(v)

    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise bad(f"must have one value per node ({n}), got {len(value)}")
        theta = np.asarray([number(v) for v in value])
    elif isinstance(value, dict):
        theta = np.zeros(n)
        for node, v in value.items():
            try:
                i = node_index(labels, node)
            except KeyError:
                try:
                    i = node_index(labels, int(node))
                except (KeyError, ValueError):
                    raise bad(f"is not a node of the graph, got {show(node)}", f"agents.stubbornness.{node}") from None
            theta[i] = number(v, f"agents.stubbornness.{node}")
    elif isinstance(value, str):
        if value != INVERSE_DEGREE:
            raise bad(f'must be numbers in [0, 1] or "{INVERSE_DEGREE}", got {show(value)}')
        heard = np.bincount(arrays.dst, arrays.weight, minlength=n)
        if not arrays.directed:
            heard = heard + np.bincount(arrays.src, arrays.weight, minlength=n)
        theta = 1.0 / (1.0 + heard)
    else:
        theta = np.full(n, number(value))
    theta[list(anchors)] = 0.0
    return theta


def show(value: Any) -> str:
    """``value`` as an error message quotes it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
