"""Theory alongside a live run: the engine from the embedded first messages, with a fitted step size.

The agents' round-0 embeddings (unit vectors) and the anchor's are points on the
sphere S^{D-1}. The engine's gradient rule runs on the graph the agents talked on,
one step per round, and its one free number, the step size, is chosen to make the
predicted mean distance to the anchor match the observed one. R^2 over the rounds
after the start says how much of the live run the theory explains.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hivemind.engine.topology import GraphArrays
from hivemind.scenario import DynamicsSpec, ManifoldSpec, RecordSpec, RunSpec, Scenario, degree_inertia
from hivemind.theory import grounded_spectrum


@dataclasses.dataclass(frozen=True)
class TheoryFit:
    step_size: float
    stable_limit: float  # 2 / lambda_max: the linear theory diverges beyond it
    predicted: np.ndarray  # (rounds + 1, agents): the engine's distances to the anchor
    r2_mean: float | None  # of the mean curve over rounds 1.. (None when it is flat or too short)
    r2_agents: float | None  # of every agent's distance over rounds 1..
    added_anchor_edges: int  # agents not adjacent to the anchor in the graph, who still read it

    def to_dict(self) -> dict:
        return {
            "step_size": self.step_size,
            "stable_limit": self.stable_limit,
            "r2_mean": self.r2_mean,
            "r2_agents": self.r2_agents,
            "added_anchor_edges": self.added_anchor_edges,
            "predicted_mean_distance": self.predicted.mean(axis=1).tolist(),
        }


def conversation_graph(scenario: Scenario) -> tuple[GraphArrays, int]:
    """The scenario's graph plus an edge from the anchor to every agent not already next to it.

    In live mode every agent reads the anchor's message, whatever the graph says, so
    this is the graph the agents actually talked on. Returns it and the edges added.
    """
    a, anchor = scenario.arrays, scenario.anchor_index
    touches = set(a.dst[a.src == anchor].tolist())
    if not a.directed:
        touches |= set(a.src[a.dst == anchor].tolist())
    missing = [i for i in range(a.n_nodes) if i != anchor and i not in touches]
    if not missing:
        return a, 0
    src = np.concatenate([a.src, np.full(len(missing), anchor, a.src.dtype)])
    dst = np.concatenate([a.dst, np.asarray(missing, a.dst.dtype)])
    out = a._replace(src=src, dst=dst, weight=np.concatenate([a.weight, np.ones(len(missing))]))
    if scenario.agents.inertia == "degree":
        out = out._replace(inertia=degree_inertia(out))
    return out, len(missing)


def theory_scenario(scenario: Scenario, anchor_vec: np.ndarray, rounds: int, arrays: GraphArrays) -> Scenario:
    """The scenario the engine runs on ``arrays``: the gradient rule on S^{D-1}, one step per round,
    float64. ``predict`` sets the step size of each trial."""
    return dataclasses.replace(
        scenario,
        manifold=ManifoldSpec("sphere", int(anchor_vec.size) - 1),
        anchors=(dataclasses.replace(scenario.anchor, state=np.asarray(anchor_vec, float).tolist()),),
        dynamics=DynamicsSpec(rule="gradient", step_size=1.0, steps=rounds),
        record=RecordSpec(every=1),
        run=RunSpec(seeds=(0,), precision="float64", checkpoint_every=0, shard="none"),
        arrays=arrays,
    )


def predict(theory: Scenario, anchor_vec: np.ndarray, start: np.ndarray, step_size: float) -> np.ndarray:
    """The engine's distances to the anchor, (rounds + 1, agents), from ``start`` (agents, D)."""
    from hivemind.runner.simulate import simulate

    anchor = theory.anchor_index
    states = np.insert(np.asarray(start, float), anchor, anchor_vec, axis=0)
    trial = dataclasses.replace(theory, dynamics=dataclasses.replace(theory.dynamics, step_size=float(step_size)))
    ds = simulate(trial, init_states=states)
    return np.delete(ds.distance_to_anchor.values[0], anchor, axis=1)


def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float | None:
    observed, predicted = np.ravel(observed), np.ravel(predicted)
    total = float(np.sum((observed - observed.mean()) ** 2))
    if observed.size < 2 or total <= 1e-12 * max(1.0, float(np.sum(observed**2))):
        return None
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / total


def fit_step_size(scenario: Scenario, anchor_vec: np.ndarray, start: np.ndarray, observed: np.ndarray) -> TheoryFit:
    """Least squares on the mean distance curve over the step size in (0, 2 / lambda_max).

    A log-spaced scan finds the basin, golden-section search refines it; the engine's
    compiled step is reused for every trial (step sizes are traced, not static).
    """
    arrays, added = conversation_graph(scenario)
    theory = theory_scenario(scenario, anchor_vec, observed.shape[0] - 1, arrays)
    lam = grounded_spectrum(arrays, scenario.anchor_index, scenario.anchor.coupling)
    limit = 2.0 / float(np.max(lam.real)) if lam.size and np.max(lam.real) > 0 else 1.0
    target = observed.mean(axis=1)

    cache: dict[float, np.ndarray] = {}

    def curve(eta: float) -> np.ndarray:
        if eta not in cache:
            cache[eta] = predict(theory, anchor_vec, start, eta)
        return cache[eta]

    def cost(eta: float) -> float:
        return float(np.sum((curve(eta).mean(axis=1)[1:] - target[1:]) ** 2))

    grid = limit * np.logspace(-3, math.log10(0.999), 25)
    costs = [cost(e) for e in grid]
    k = int(np.argmin(costs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(20):
        if cost(a) < cost(b):
            hi = b
        else:
            lo = a
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    best = min([grid[k], a, b], key=cost)
    predicted = curve(best)
    return TheoryFit(
        step_size=float(best),
        stable_limit=float(limit),
        predicted=predicted,
        r2_mean=r_squared(target[1:], predicted.mean(axis=1)[1:]),
        r2_agents=r_squared(observed[1:], predicted[1:]),
        added_anchor_edges=added,
    )


# ---------------------------------------------------------------------------
# The engine's dynamics fitted to the embeddings (hivemind.theory.dynamics_fit)

# Below this anchor coupling per round the anchor would need ln 2 / 1e-3 ~ 700 rounds to halve a
# distance: the pull is called measurable when the bootstrap interval's lower end is above it.
KAPPA_RESOLUTION = 1e-3
LONG_RUN = 2000
COLLAPSED = 0.01  # radians: a long-run mean distance below this is a collapse into the anchor, above it a floor


def peer_edges(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of the agents' graph without the anchor, agents numbered in graph order: dst hears src."""
    from hivemind.live.conversation import in_neighbours

    hears = in_neighbours(scenario)
    agents = sorted(hears)
    index = {i: k for k, i in enumerate(agents)}
    pairs = [(index[j], index[i]) for i in agents for j in hears[i]]
    return np.asarray([s for s, _ in pairs], np.int64), np.asarray([d for _, d in pairs], np.int64)


def peer_graph(scenario: Scenario):
    """The agents' graph without the anchor as the engine's topology: who hears whom in the prompts."""
    from hivemind.theory.dynamics_fit import peer_topology

    src, dst = peer_edges(scenario)
    return peer_topology(scenario.arrays.n_nodes - 1, src, dst, directed=True)


def long_run(params: dict, start: np.ndarray, anchor_vec: np.ndarray, topo, rounds: int = LONG_RUN, seed: int = 0) -> dict:
    """Where the fitted dynamics take the population from ``start`` and how fast.

    The rate is the linear theory's near the anchor: each mode of the agents' tangent
    displacements shrinks by |1 - kappa - eta lambda_k| per round, lambda_k the eigenvalues
    of the peer graph's random-walk Laplacian; the slowest mode sets the rate (with noise,
    the rate of relaxation to the noise floor). The mean distance after ``rounds`` rounds
    comes from running the fitted model itself; with noise, averaged over the last tenth
    of the rounds and 8 paths (the stationary floor).
    """
    import jax
    import jax.numpy as jnp

    from hivemind.theory.dynamics_fit import mean_distance_ahead, noisy_mean_distance

    eta, kappa = params["peer_coupling"], params["anchor_coupling"]
    n = start.shape[0]
    w = np.zeros((n, n))
    np.add.at(w, (np.asarray(topo.receivers), np.asarray(topo.senders)), np.asarray(topo.weights))
    lam = np.linalg.eigvals(np.diag(w.sum(axis=1)) - w)
    factor = float(np.max(np.abs(1.0 - kappa - eta * lam)))
    rate = -math.log(factor) if 0 < factor < 1 else (math.inf if factor == 0 else 0.0)
    sigma = params.get("noise", 0.0)
    with jax.enable_x64(True):
        a, x0 = jnp.asarray(anchor_vec), jnp.asarray(start)
        if sigma > 0:
            d = np.asarray(noisy_mean_distance(rounds, 8, topo, a, eta, kappa, sigma, x0, jax.random.key(seed)))
            end = float(d[-max(rounds // 10, 1) :].mean())
        else:
            d = np.asarray(mean_distance_ahead(rounds, topo, a, eta, kappa, x0))
            end = float(d[-1])
    return {
        "rounds": rounds,
        "mean_distance_now": float(d[0]),
        "mean_distance": end,
        "rate_per_round": rate,
        "half_life_rounds": math.log(2) / rate if 0 < rate < math.inf else None,
        "verdict": "collapse" if end < COLLAPSED else "floor",
    }


def fit_dynamics(
    scenario: Scenario, embeddings: np.ndarray, anchor_vec: np.ndarray, resamples: int = 20, seed: int = 0
) -> dict | None:
    """The three nested models of ``dynamics_fit`` on one decoding's (rounds + 1, agents, D) embeddings.

    Fitted on the first half of the rounds, scored on the second (continued from the observed
    state); kappa's interval is a 90% percentile bootstrap over agents with ``resamples``
    draws (none when 0). None when there are fewer than two rounds to split.
    """
    from hivemind.theory.dynamics_fit import MODELS, anchor_interval, fit, r_squared

    y = np.asarray(embeddings, np.float64)
    rounds = y.shape[0] - 1
    if rounds < 2:
        return None
    topo = peer_graph(scenario)
    models = {}
    intervals: dict[str, tuple[float, float] | None] = {}
    for m in MODELS:
        f = fit(y, anchor_vec, topo, m, seed=seed)
        mean_model = "peer" if m == "noise" else m  # the noise does not move kappa: one interval for both
        if mean_model not in intervals:
            intervals[mean_model] = anchor_interval(y, anchor_vec, topo, mean_model, resamples, seed) if resamples else None
        interval = intervals[mean_model]
        models[m] = {
            "params": f.params,
            "train_rmse": f.train_rmse,
            "heldout_rmse": f.heldout_rmse,
            "heldout_r2": f.heldout_r2,
            "anchor_coupling_interval": None if interval is None else list(interval),
            "predicted_mean_distance": f.predicted_mean_distance.tolist(),
            "long_run": long_run(f.params, y[-1], anchor_vec, topo, seed=seed),
        }
    # The held-out R^2 is against the window's own mean, an oracle: persistence's beside it says
    # what a number means (on the 32-agent greedy run persistence itself scored -2.4).
    curve = np.arccos(np.clip(y @ np.asarray(anchor_vec, np.float64), -1.0, 1.0)).mean(1)
    train = rounds // 2
    persistence = r_squared(np.full(rounds - train, curve[train]), curve[train + 1 :])
    return {
        "train_rounds": train,
        "interval": {"method": "percentile bootstrap over agents", "resamples": resamples, "level": 0.9, "seed": seed},
        "persistence_heldout_r2": persistence,
        "models": models,
    }


def fit_forecast(scenario: Scenario, embeddings: np.ndarray, anchor_vec: np.ndarray, resamples: int = 20, seed: int = 0):
    """The forecast models of ``hivemind.theory.forecast`` on one decoding's embeddings: fitted by the
    one-step loss on the first half of the transitions, scored one round ahead on the rest against
    persistence, the neighbours, the centroid and the anchor; parametric-bootstrap intervals with
    ``resamples`` draws (by blocks of rounds for a deterministic decoder). ``anchor_pull`` says
    whether kappa's 90 % interval lies above ``KAPPA_RESOLUTION``, in the best model if it has
    an anchor coupling, else in ``peer``. None with fewer than two transitions."""
    from hivemind.theory.dynamics_fit import peer_topology
    from hivemind.theory.forecast import FREE, fit_all

    y = np.asarray(embeddings, np.float64)
    if y.shape[0] - 1 < 2:
        return None
    src, dst = peer_edges(scenario)
    topo = peer_topology(y.shape[1], src, dst, directed=True)
    out = fit_all(y, anchor_vec, topo, src, dst, resamples=resamples, seed=seed)
    model = out["best"] if FREE.get(out["best"], (0, 0))[1] else "peer"
    interval = out["models"][model].get("intervals", {}).get("anchor_coupling")
    out["anchor_pull"] = {
        "model": model,
        "anchor_coupling": out["models"][model]["params"]["anchor_coupling"],
        "interval": interval,
        "kappa_resolution": KAPPA_RESOLUTION,
        "measurable": None if interval is None else bool(interval[0] > KAPPA_RESOLUTION),
    }
    return out


def fit_group_couplings(scenario: Scenario, embeddings: np.ndarray, anchor_vec: np.ndarray, resamples: int = 20, seed: int = 0):
    """Who pulls whom (``hivemind.theory.groups``) among the groups of ``live.group_of``: fitted on
    the first half of the transitions, scored on the rest, refit intervals from ``resamples``
    draws. None for one population or fewer than two transitions."""
    from hivemind.theory.dynamics_fit import peer_topology
    from hivemind.theory.groups import fit_groups

    groups = scenario.live.group_of
    y = np.asarray(embeddings, np.float64)
    if groups is None or len(set(groups)) < 2 or y.shape[0] - 1 < 2:
        return None
    src, dst = peer_edges(scenario)
    topo = peer_topology(y.shape[1], src, dst, directed=True)
    return fit_groups(y, anchor_vec, topo, src, dst, list(groups), resamples=resamples, seed=seed)
