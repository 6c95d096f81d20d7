"""Who pulls whom: the forecast model with one peer coupling per pair of agent groups.

Agents fall into groups (a model family, a persona); ``group[i]`` is agent i's. The step is the
``peer`` model of ``hivemind.theory.forecast`` with the peer coupling split by the groups of the
hearer and the speaker and the anchor coupling by the hearer's group,

    x_i <- Exp_{x_i}( sum_{j -> i} eta[g_i, g_j] / m_i Log_{x_i}(x_j) + kappa[g_i] Log_{x_i}(a) ),

m_i agent i's in-degree, so that with one group it is the ``peer`` model exactly.
``eta[g, h]`` is the pull that agents of group h exert on agents of group g: the rows hear, the
columns speak. It is fitted by the same one-step loss, through the same filter (gain k) and
with the same gate for a deterministic decoder as the other forecast models, and scored one
round ahead on the held-out rounds against the same baselines.

Intervals (``fit_groups(..., resamples=B)``) come from refits: each resample weighs every
training transition of every agent by how often a moving block of rounds and a draw of agents
within each group picked it, and the model is fitted again from the fit. Agents are resampled
within their group so that every resample has every group (and every coupling a meaning);
the spread between seeds remains the check that does not condition on one conversation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.topology import Topology
from hivemind.theory import forecast as fc
from hivemind.theory.minimize import lbfgs

LEVEL = 0.9
# Pulls below this (per round) are not told apart from zero: a ratio's denominator is floored
# here, so a pull that is not measurably above zero gives a lower bound on the ratio, not an
# infinite one. The same resolution as the anchor coupling's verdict in ``live.fit``.
RESOLUTION = 1e-3


def _unpack(theta, g: int):
    eta = jax.nn.softplus(theta[: g * g]).reshape(g, g)
    kappa = jax.nn.softplus(theta[g * g : g * g + g])
    return eta, kappa, jax.nn.sigmoid(theta[g * g + g])


def model_step(manifold, topo: Topology, anchor, group, eta, kappa, x):
    logs = manifold.log(x[topo.receivers], x[topo.senders])
    w = topo.weights.astype(x.dtype) * eta[group[topo.receivers], group[topo.senders]]
    # A dense (agents, messages) matmul, as in forecast._step: no scatter under vmap.
    v = (jax.nn.one_hot(topo.receivers, x.shape[0], dtype=x.dtype).T * w) @ logs
    v = v + kappa[group][:, None] * manifold.log(x, jnp.broadcast_to(anchor, x.shape))
    return manifold.exp(x, v)


def filter_forecasts(topo: Topology, anchor, group, eta, kappa, gain, ys, open_):
    """The filter's one-step forecasts (``forecast.filtered``) with the group-coupling step."""
    return fc.filtered(lambda manifold, x: model_step(manifold, topo, anchor, group, eta, kappa, x), gain, ys, open_)


@functools.partial(jax.jit, static_argnums=0)
def _value_and_grad(g: int, y, anchor, topo: Topology, group, open_, weights, theta):
    def loss(theta):
        eta, kappa, gain = _unpack(theta, g)
        f = filter_forecasts(topo, anchor, group, eta, kappa, gain, y, open_)
        sq = fc.sphere_of(y.shape[-1]).dist(f, y[1:]) ** 2
        return jnp.sum(sq * weights) / jnp.sum(weights)

    return jax.value_and_grad(loss)(theta)


def _groups(group, n: int) -> tuple[np.ndarray, list]:
    """Group labels as indices 0..G-1 (in order of first appearance) and the labels."""
    if len(group) != n:
        raise ValueError(f"group must name one group per agent ({n}), got {len(group)}")
    names = list(dict.fromkeys(str(g) for g in group))
    return np.asarray([names.index(str(g)) for g in group], np.int32), names


def _fit_theta(y, anchor, topo, index, g, open_, weights, theta):
    with jax.enable_x64(True):
        args = (jnp.asarray(y), jnp.asarray(anchor), Topology(*(jnp.asarray(t) for t in topo)), jnp.asarray(index))
        args += (jnp.asarray(open_), jnp.asarray(weights, jnp.float64))
        step = functools.partial(_value_and_grad, g, *args)
        theta = lbfgs(lambda t: step(jnp.asarray(t)), theta, fc.MAX_ITERATIONS, fc.GRADIENT_TOLERANCE)
        return np.asarray(theta), float(step(jnp.asarray(theta))[0])


def params_of(theta, g: int, names: list) -> dict:
    with jax.enable_x64(True):
        eta, kappa, gain = (np.asarray(v) for v in _unpack(jnp.asarray(theta), g))
    return {
        "groups": names,
        "group_coupling": eta.tolist(),  # [hearer's group][speaker's group]
        "anchor_coupling": dict(zip(names, kappa.tolist(), strict=True)),
        "gain": float(gain),
    }


def _resample_weights(rounds: int, train: int, index: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, R, N): moving blocks of training rounds times agents drawn within their group."""
    rows = fc.block_weights(rounds, train, resamples, seed)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1), resamples)
    cols = np.zeros((resamples, index.size))
    for r, key in enumerate(keys):
        for gi, k in enumerate(jax.random.split(key, int(index.max()) + 1)):
            members = np.flatnonzero(index == gi)
            picks = np.asarray(jax.random.choice(k, members.size, (members.size,)))
            np.add.at(cols[r], members[picks], 1.0)
    return rows[:, :, None] * cols[:, None, :]


def predict(y, anchor, topo: Topology, group, params: dict, open_=None) -> np.ndarray:
    """The filter's one-step forecasts of rounds 1..R (R, N, D) under ``params`` (from ``fit_groups``)."""
    y = np.asarray(y, np.float64)
    index, _ = _groups(group, y.shape[1])
    open_ = np.ones((y.shape[0] - 1, y.shape[1]), bool) if open_ is None else np.asarray(open_, bool)
    names = params["groups"]
    with jax.enable_x64(True):
        eta = jnp.asarray(params["group_coupling"])
        kappa = jnp.asarray([params["anchor_coupling"][k] for k in names])
        t = Topology(*(jnp.asarray(v) for v in topo))
        a, ys = jnp.asarray(anchor), jnp.asarray(y)
        return np.asarray(filter_forecasts(t, a, jnp.asarray(index), eta, kappa, params["gain"], ys, jnp.asarray(open_)))


def fit_groups(
    y,
    anchor,
    topo: Topology,
    src,
    dst,
    group,
    train: int | None = None,
    resamples: int = 0,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """The group-coupling model fitted on the first ``train`` transitions (default: half of them)
    and scored one round ahead on the rest, per agent, against persistence.

    Returns ``{"params": {"groups", "group_coupling", "anchor_coupling", "gain"}, "intervals":
    {"group_coupling": [[[lo, hi]]], "anchor_coupling": {g: [lo, hi]}, "ratio": ...}, "one_step":
    {"mse", "skill_vs_persistence", "mse_by_group"}, "dominance": [...]}``; ``intervals`` only
    with ``resamples``. ``dominance`` compares each pair of groups: how many times harder g pulls
    h than h pulls g, with the interval of that ratio over the same resamples.
    """
    y = np.asarray(y, np.float64)
    rounds, n = y.shape[0] - 1, y.shape[1]
    if anchor is None:
        raise ValueError("the group-coupling model needs an anchor")
    index, names = _groups(group, n)
    g = len(names)
    train = max(1, rounds // 2) if train is None else train
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out transition, got {rounds} rounds and train={train}")
    decoder = fc.deterministic(y, src, dst, train)
    open_ = fc.gate(y, src, dst) if decoder["detected"] else np.ones((rounds, n), bool)
    weights = np.broadcast_to((np.arange(rounds) < train)[:, None], (rounds, n)).astype(np.float64)
    start = np.concatenate([np.full(g * g + g, fc.START[0]), [fc.START[1]]])
    theta, mse = _fit_theta(y, anchor, topo, index, g, open_, weights, start)
    params = params_of(theta, g, names)
    pred = predict(y, anchor, topo, group, params, open_)
    sq = fc.geodesic_distance(pred[train:], y[train + 1 :]) ** 2
    persistence = fc.geodesic_distance(y[train:-1], y[train + 1 :]) ** 2
    out = {
        "params": params,
        "n_params": g * g + g + 2,  # the couplings, the gain, and the innovations' variance
        "train_mse": mse,
        "train_transitions": train,
        "deterministic_decoder": decoder,
        "agents_per_group": {k: int(np.sum(index == i)) for i, k in enumerate(names)},
        "one_step": {
            "mse": float(sq.mean()),
            "skill_vs_persistence": fc.skill_score(float(sq.mean()), float(persistence.mean())),
            "mse_by_group": {k: float(sq[:, index == i].mean()) for i, k in enumerate(names)},
        },
    }
    draws = []
    if resamples:
        for w in _resample_weights(rounds, train, index, resamples, seed):
            th, _ = _fit_theta(y, anchor, topo, index, g, open_, w, theta)
            draws.append(params_of(th, g, names))
        out["intervals"] = _intervals(draws, names, level)
        out["interval"] = {"method": "refit on moving blocks of rounds x agents within groups", "resamples": resamples}
        out["interval"] |= {"level": level, "seed": seed}
    out["dominance"] = _dominance(params, draws, names, level)
    return out


def _quantiles(values, level: float) -> list[float]:
    lo, hi = np.quantile(np.asarray(values, np.float64), [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def _intervals(draws: list[dict], names: list, level: float) -> dict:
    g = len(names)
    eta = np.asarray([d["group_coupling"] for d in draws])
    return {
        "group_coupling": [[_quantiles(eta[:, a, b], level) for b in range(g)] for a in range(g)],
        "anchor_coupling": {k: _quantiles([d["anchor_coupling"][k] for d in draws], level) for k in names},
        "gain": _quantiles([d["gain"] for d in draws], level),
    }


def _ratio(eta, a: int, b: int) -> float:
    """How many times harder group a pulls group b than b pulls a: eta[b, a] / eta[a, b], both
    floored at ``RESOLUTION``."""
    return max(float(eta[b][a]), RESOLUTION) / max(float(eta[a][b]), RESOLUTION)


def _dominance(params: dict, draws: list[dict], names: list, level: float) -> list[dict]:
    out = []
    eta = params["group_coupling"]
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            k = _ratio(eta, a, b)
            strong, weak = (a, b) if k >= 1 else (b, a)
            entry = {"stronger": names[strong], "weaker": names[weak], "ratio": max(k, 1 / k)}
            entry |= {"pull_of_stronger": eta[weak][strong], "pull_of_weaker": eta[strong][weak]}
            # Neither pull, or only the weaker one, is below the resolution: say which.
            entry["measurable"] = eta[weak][strong] >= RESOLUTION
            entry["lower_bound"] = entry["measurable"] and eta[strong][weak] < RESOLUTION
            if draws:
                entry["interval"] = _quantiles([_ratio(d["group_coupling"], strong, weak) for d in draws], level)
            out.append(entry)
    return out


def describe(result: dict) -> list[str]:
    """The coupling table and one sentence per pair of groups, as the CLI prints them."""
    p, iv = result["params"], result.get("intervals")
    names = p["groups"]
    width = max(12, *(len(k) + 2 for k in names))
    lines = ["pull on the row's agents by the column's (eta[row, column]), with 90% intervals:"]
    lines.append(" " * width + "".join(f"{k:>26}" for k in names) + f"{'anchor (kappa)':>26}")

    def cell(v, interval):
        return f"{v:.4f}" + ("" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]")

    for a, row in enumerate(names):
        cells = [cell(p["group_coupling"][a][b], iv and iv["group_coupling"][a][b]) for b in range(len(names))]
        cells.append(cell(p["anchor_coupling"][row], iv and iv["anchor_coupling"][row]))
        lines.append(f"{row:<{width}}" + "".join(f"{c:>26}" for c in cells))
    for d in result["dominance"]:
        if not d["measurable"]:
            pair = f"neither {d['stronger']} nor {d['weaker']}"
            lines.append(f"{pair} pulls the other measurably (both below {RESOLUTION:g} per round)")
            continue
        interval = "" if "interval" not in d else f" (90% interval {d['interval'][0]:.3g} to {d['interval'][1]:.3g})"
        bound = "at least " if d["lower_bound"] else ""
        lines.append(f"{d['stronger']} pulls {d['weaker']} {bound}{d['ratio']:.3g} times harder than the reverse{interval}")
        if d["lower_bound"]:
            lines.append(f"  ({d['weaker']}'s pull on {d['stronger']} is below the resolution, {RESOLUTION:g} per round)")
    skill = result["one_step"]["skill_vs_persistence"]
    lines.append(f"one-step skill against persistence on the held-out rounds: {'-' if skill is None else f'{skill:.3f}'}")
    return lines
