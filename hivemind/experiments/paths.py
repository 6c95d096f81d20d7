"""Path independence: do different update rules, seeds and starts end in the same place?

The paper's first claim is that smooth gradient updates and noisy stochastic updates
reach the same final configuration. Here that is a test that can fail: a scenario is
run under several rules, seeds and (optionally) initial configurations, and per agent
we measure

* the *spread*: the largest geodesic distance between the endpoints of any two runs;
* the *gap*: the largest distance of an endpoint to the theoretical endpoint, which for
  an agent that can hear the anchor is the anchor's state, and for one that cannot is
  undefined (the theory predicts nothing for it, so it always disagrees).

The verdict passes only if every agent's spread and gap are within the tolerance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import reachable_from_anchor
from hivemind.io.results import finite_or_none
from hivemind.runner.simulate import SimulationDiverged, anchor_state, simulate
from hivemind.scenario import Scenario
from hivemind.scenario.names import BUILTIN_RULES
from hivemind.theory import MAX_DENSE_AGENTS, grounded_spectrum, hearers

DEFAULT_RULES = ("gradient", "stochastic", "gossip", "adam")

# When the scenario has no noise, ``stochastic`` would just be ``gradient`` again; these
# give it a noise that decays, so that the comparison means something.
DEFAULT_NOISE = {"noise": 0.05, "noise_schedule": "exponential"}


@dataclass(frozen=True)
class RuleSpec:
    """One rule to compare, with an optional step size of its own (``adam:0.005``)."""

    name: str
    step_size: float | None = None

    @property
    def label(self) -> str:
        return self.name if self.step_size is None else f"{self.name}:{self.step_size:g}"


def parse_rules(text: str) -> list[RuleSpec]:
    """``"gradient,stochastic,adam:0.005"`` -> rule specs; raises ValueError naming the bad item."""
    import optax

    specs = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, _, step = item.partition(":")
        if name not in BUILTIN_RULES and not callable(getattr(optax, name, None)):
            raise ValueError(f"unknown rule {name!r} (built in: {', '.join(BUILTIN_RULES)}, or an optax optimizer)")
        try:
            size = float(step) if step else None
        except ValueError:
            raise ValueError(f"rule {item!r}: the step size after ':' must be a number") from None
        if size is not None and not (size > 0 and math.isfinite(size)):
            raise ValueError(f"rule {item!r}: the step size must be a finite number > 0")
        specs.append(RuleSpec(name, size))
    if not specs:
        raise ValueError("no rules given")
    return specs


def default_tolerance(scenario: Scenario) -> tuple[float, str]:
    """The distance below which two endpoints count as equal, and how it was chosen.

    3 sqrt(eps) (1e-3 in float32, 4.5e-8 in float64) is the usual "half the digits"
    convergence test. It is raised to 10x the precision floor of the gradient step,
    eps / (eta lambda_min): below that, updates round away before they move a state.
    """
    eps = float(np.finfo(scenario.run.precision).eps)
    tol, why = 3 * math.sqrt(eps), f"3 sqrt(eps) for {scenario.run.precision}"
    if scenario.arrays.n_nodes <= MAX_DENSE_AGENTS:
        lam = grounded_spectrum(scenario.arrays, scenario.anchor_indices, [a.coupling for a in scenario.anchors])
        lam_min = float(np.min(lam.real)) if lam.size else 0.0
        if lam_min > 0:
            floor = 10 * eps / (scenario.dynamics.step_size * lam_min)
            if floor > tol:
                tol, why = floor, f"10 eps / (step_size lambda_min) = 10 x the {scenario.run.precision} precision floor"
    return tol, why


def scenario_for(scenario: Scenario, rule: RuleSpec, init_seed: int | None) -> tuple[Scenario, list[str]]:
    """The scenario under ``rule`` from initial configuration ``init_seed``; also notes on what changed."""
    dyn = dataclasses.replace(scenario.dynamics, rule=rule.name)
    notes = []
    if rule.step_size is not None:
        dyn = dataclasses.replace(dyn, step_size=rule.step_size)
    if rule.name == "stochastic" and dyn.noise == 0:
        decay = max(1.0, dyn.steps / 10)
        dyn = dataclasses.replace(dyn, **DEFAULT_NOISE, noise_decay=decay)
        notes.append(
            f"stochastic: the scenario has no noise, so using noise {DEFAULT_NOISE['noise']} decaying exponentially "
            f"over {decay:g} steps"
        )
    init = dataclasses.replace(scenario.init, seed=init_seed)
    return dataclasses.replace(scenario, dynamics=dyn, init=init), notes


@dataclass
class PathRun:
    """The endpoints of one rule from one initial configuration, for every seed."""

    rule: str
    init_seed: int
    seeds: list[int]
    finals: np.ndarray  # (S, N, D); NaN rows for a diverged run
    steps: np.ndarray  # recorded steps
    mean_distance: np.ndarray  # (S, T) mean distance to the anchor over the agents that hear it
    diverged: str | None = None
    final_gap_max: float = math.nan  # over seeds and the agents that hear the anchor; set by the report


@dataclass
class PathsReport:
    """Everything ``hivemind paths`` prints and writes."""

    scenario: str
    tol: float
    tol_reason: str
    labels: list[str]
    anchor: int
    reachable: np.ndarray  # (N,) bool
    spread: np.ndarray  # (N,) largest endpoint-to-endpoint distance
    gap: np.ndarray  # (N,) largest endpoint-to-anchor distance (inf where no path)
    runs: list[PathRun]
    notes: list[str] = field(default_factory=list)
    anchors: list[int] = field(default_factory=list)  # every anchor; ``anchor`` is the first
    causes: list[str] = field(default_factory=list)  # what in the scenario keeps agents off the anchors

    @property
    def disagreeing(self) -> np.ndarray:
        """Indices of the agents whose endpoints disagree, worst first."""
        bad = ~self.reachable | ~(self.spread <= self.tol) | ~(self.gap <= self.tol)
        bad[self.anchors or [self.anchor]] = False
        idx = np.flatnonzero(bad)
        worst = np.nan_to_num(np.maximum(self.spread, self.gap)[idx], nan=np.inf)
        return idx[np.argsort(-worst, kind="stable")]

    @property
    def agrees(self) -> bool:
        return self.disagreeing.size == 0

    def reason(self, i: int) -> str:
        if not self.reachable[i]:
            return "no path to the anchor"
        if not np.isfinite(self.spread[i]):
            return "a run diverged"
        parts = []
        if self.gap[i] > self.tol:
            which = "the nearest anchor's state" if len(self.anchors) > 1 else "the anchor's state"
            parts.append(f"ends {self.gap[i]:.3g} from {which}")
        if self.spread[i] > self.tol:
            parts.append(f"endpoints differ by {self.spread[i]:.3g}")
        if self.gap[i] > self.tol and self.causes:
            parts.append("because " + " and ".join(self.causes))
        return ", ".join(parts)

    def rule_rows(self) -> list[dict]:
        """Per rule: how far its endpoints are from the anchor over the agents that can hear it."""
        hears = self.reachable.copy()
        hears[self.anchors or [self.anchor]] = False
        rows = {}
        for run in self.runs:
            row = rows.setdefault(run.rule, {"rule": run.rule, "runs": 0, "diverged": 0, "mean_gap": [], "max_gap": []})
            row["runs"] += len(run.seeds)
            if run.diverged:
                row["diverged"] += len(run.seeds)
            row["mean_gap"].append(run.mean_distance[:, -1])
            row["max_gap"].append(run.final_gap_max)
        out = []
        for row in rows.values():
            mean = np.concatenate(row.pop("mean_gap"))
            row["mean_final_distance"] = float(np.mean(mean)) if hears.any() else float("nan")
            row["max_final_distance"] = float(np.max(row.pop("max_gap")))
            out.append(row)
        return out

    def to_dict(self, max_named: int = 1000) -> dict:
        bad = self.disagreeing
        return {
            "scenario": self.scenario,
            "verdict": "agree" if self.agrees else "disagree",
            "tol": self.tol,
            "tol_reason": self.tol_reason,
            "notes": self.notes,
            "agents": len(self.labels) - 1,
            "agents_disagreeing": int(bad.size),
            "max_spread": finite_or_none(np.max(np.delete(self.spread, self.anchor), initial=0.0)),
            "max_gap": finite_or_none(np.max(np.delete(self.gap, self.anchor), initial=0.0)),
            "rules": self.rule_rows(),
            "runs": [{"rule": r.rule, "init_seed": r.init_seed, "seeds": r.seeds, "diverged": r.diverged} for r in self.runs],
            "disagreeing": [
                {
                    "agent": self.labels[i],
                    "index": int(i),
                    "reason": self.reason(i),
                    "spread": finite_or_none(self.spread[i]),
                    "gap": finite_or_none(self.gap[i]),
                }
                for i in bad[:max_named]
            ],
        }


def _run_one(scenario: Scenario, rule: str, init_seed: int) -> PathRun:
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    diverged = None
    try:
        ds = simulate(scenario)
        finals = ds.state.values[:, -1]
    except SimulationDiverged as e:
        ds, diverged = e.dataset, str(e)
        finals = np.full((len(scenario.run.seeds), scenario.arrays.n_nodes, manifold.ambient_dim), np.nan)
    hears = hearers(ds)
    dist = ds.distance_to_anchor.values[:, :, hears]
    mean = dist.mean(axis=2) if hears.any() else np.full(dist.shape[:2], np.nan)
    return PathRun(rule, init_seed, list(scenario.run.seeds), finals, ds.step.values, mean, diverged)


def compare_paths(
    scenario: Scenario,
    rules: Sequence[RuleSpec] = tuple(RuleSpec(r) for r in DEFAULT_RULES),
    seeds: Sequence[int] = (0, 1, 2, 3),
    init_seeds: Sequence[int] | None = None,
    tol: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> PathsReport:
    """Run ``scenario`` under every rule, seed and initial configuration, and compare the endpoints.

    ``init_seeds`` defaults to one initial configuration: the scenario's ``init.seed``, or
    else its first run seed, so that only the rule and the dynamics' randomness differ.
    """
    if init_seeds is None:
        init_seeds = [scenario.init.seed if scenario.init.seed is not None else scenario.run.seeds[0]]
    base = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, seeds=tuple(seeds)))
    tol_reason = "given"
    if tol is None:
        tol, tol_reason = default_tolerance(base)
    runs, notes = [], []
    for spec in rules:
        for init_seed in init_seeds:
            s, why = scenario_for(base, spec, init_seed)
            notes += [n for n in why if n not in notes]
            if progress is not None:
                progress(f"{spec.label}, initial configuration {init_seed}, seeds {list(seeds)}")
            runs.append(_run_one(s, spec.label, init_seed))
    return _report(base, runs, tol, tol_reason, notes)


def _report(scenario: Scenario, runs: list[PathRun], tol: float, tol_reason: str, notes: list[str]) -> PathsReport:
    precision = scenario.run.precision
    with jax.enable_x64(precision == "float64"):
        manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
        dtype = jnp.dtype(precision)
        targets = [np.asarray(anchor_state(scenario, manifold, dtype, k)) for k in range(len(scenario.anchors))]
        finals = np.concatenate([r.finals for r in runs]).astype(np.float64)  # (R, N, D)
        # Distances in float64 so that the comparison itself adds no rounding of its own.
        with jax.enable_x64(True):
            f = jnp.asarray(finals)
            gaps = np.min([np.asarray(manifold.dist(f, jnp.asarray(t, jnp.float64))) for t in targets], axis=0)  # (R, N)
            spread = np.zeros(finals.shape[1])
            for r in range(f.shape[0]):
                spread = np.fmax(spread, np.asarray(manifold.dist(f[r][None], f)).max(axis=0))
    nan_rows = ~np.isfinite(finals).all(axis=2)  # (R, N)
    spread = np.where(nan_rows.any(axis=0), np.nan, spread)
    gaps = np.where(nan_rows, np.inf, gaps)
    anchors = list(scenario.anchor_indices)
    reachable = reachable_from_anchor(scenario.arrays, anchors)
    gap = np.where(reachable, gaps.max(axis=0), np.inf)
    hears = reachable.copy()
    hears[anchors] = False
    k = 0
    for r in runs:
        n = r.finals.shape[0]
        r.final_gap_max = float(np.max(gaps[k : k + n][:, hears], initial=0.0))
        k += n
    labels = [str(v) for v in scenario.arrays.labels]
    return PathsReport(
        scenario.name, tol, tol_reason, labels, anchors[0], reachable, spread, gap, runs, notes, anchors, split_causes(scenario)
    )


def split_causes(scenario: Scenario) -> list[str]:
    """What in a scenario can keep agents away from every anchor: the paper's collapse needs none of it."""
    causes = []
    labels = scenario.arrays.labels
    if len(scenario.anchors) > 1:
        names = ", ".join(str(labels[i]) for i in scenario.anchor_indices)
        causes.append(f"{len(scenario.anchors)} anchors ({names}) pull against each other: agents between them settle in between")
    if scenario.dynamics.confidence is not None:
        causes.append(
            f"dynamics.confidence = {scenario.dynamics.confidence:g} silences edges between agents farther apart, "
            "so clusters can settle away from the anchor"
        )
    if np.any(scenario.stubbornness > 0):
        causes.append("agents.stubbornness keeps each agent partly at its initial state")
    return causes
