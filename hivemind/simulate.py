"""Wiring: scenario -> topology + manifold + rule -> chunked, jitted, vmapped scan -> Dataset.

What is static (the manifold, the rule's name and schedule kind, the shapes, the
recording stride) picks the compiled code; every number (step size, noise, seeds,
states) is a traced argument, so changing one does not recompile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hivemind import checkpoint, energy, sharding
from hivemind.initial import initial_states
from hivemind.manifolds import Manifold, get_manifold
from hivemind.results import build_dataset
from hivemind.rules import make_rule
from hivemind.scenario import Scenario
from hivemind.topology import Topology, build_topology

# Purpose tags folded into seeds, so the anchor, the initial configuration and the
# dynamics draw from independent streams even when their seeds are equal.
TAG_ANCHOR, TAG_INIT, TAG_DYNAMICS = 1, 2, 3

# About this many progress updates (and NaN checks) per run.
CHUNKS = 20


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``dataset`` holds every record up to the last finished chunk."""

    def __init__(self, dataset: xr.Dataset, step: int):
        super().__init__(f"interrupted at step {step}")
        self.dataset = dataset
        self.step = step


class SimulationDiverged(RuntimeError):
    """A NaN or Inf appeared; ``dataset`` holds every record up to the last finite one."""

    def __init__(self, message: str, dataset: xr.Dataset, step: int):
        super().__init__(message)
        self.dataset = dataset
        self.step = step


@dataclass(frozen=True)
class EngineConfig:
    """The static half of a run: hashable, so it can key jit's cache."""

    manifold: Manifold
    rule: str
    schedule: str = "constant"
    static_options: tuple[tuple[str, Any], ...] = ()


class Carry(NamedTuple):
    states: jax.Array
    rule_state: Any
    key: jax.Array


def _rule(config: EngineConfig, hyper: dict):
    options = dict(config.static_options) | dict(hyper.get("options", {}))
    return make_rule(config.manifold, config.rule, hyper, config.schedule, options)


def _observe(manifold: Manifold, states: jax.Array, topology: Topology):
    """(states, loss, distance_to_anchor) of a batch of runs (S, N, D), computed agents-first."""
    x, n = energy.agents_first(states), states.shape[0]
    loss = energy.seeds_first(energy.loss(manifold, x, topology), n, agent_axis=False)
    return states, loss, energy.seeds_first(energy.distance_to_anchor(manifold, x, topology.anchor), n)


@partial(jax.jit, static_argnames=("config",))
def start(config: EngineConfig, hyper: dict, topology: Topology, states: jax.Array, keys: jax.Array):
    """Initial carries and observations for a batch of seeds: ``states`` (S, N, D), ``keys`` (S,)."""
    rule = _rule(config, hyper)

    def one(x, key):
        k_rule, k_run = jax.random.split(key)
        return Carry(x, rule.init(x, k_rule), k_run)

    return jax.vmap(one)(states, keys), _observe(config.manifold, states, topology)


@partial(jax.jit, static_argnames=("config", "n_records", "every"), donate_argnames=("carry",))
def advance(config: EngineConfig, hyper: dict, topology: Topology, carry: Carry, n_records: int, every: int):
    """Run ``n_records * every`` steps for every seed, observing every ``every`` steps.

    Returns the new carry and (states, loss, distance_to_anchor) with shapes
    (S, n_records, N, D), (S, n_records), (S, n_records, N).
    """
    rule = _rule(config, hyper)

    def one(c: Carry) -> Carry:
        key, sub = jax.random.split(c.key)
        states, rule_state = rule.step(c.states, c.rule_state, topology, sub)
        return Carry(states, rule_state, key)

    def step(c: Carry, _):
        return jax.vmap(one)(c), None

    def record(c: Carry, _):
        c, _ = jax.lax.scan(step, c, None, length=every)
        return c, _observe(config.manifold, c.states, topology)

    carry, recs = jax.lax.scan(record, carry, None, length=n_records)
    return carry, tuple(jnp.swapaxes(r, 0, 1) for r in recs)


def engine_inputs(scenario: Scenario, dtype) -> tuple[EngineConfig, dict, Topology]:
    """The static config, the numeric hyperparameters and the topology of a scenario."""
    dyn = scenario.dynamics
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    static_opts = tuple(sorted((k, v) for k, v in dyn.options.items() if isinstance(v, (bool, str, int))))
    config = EngineConfig(manifold, dyn.rule, dyn.noise_schedule, static_opts)
    hyper = {
        "step_size": jnp.asarray(dyn.step_size, dtype),
        "noise": jnp.asarray(dyn.noise, dtype),
        "noise_decay": jnp.asarray(dyn.noise_decay, dtype),
        "gossip_prob": jnp.asarray(dyn.gossip_prob, dtype),
        "options": {k: jnp.asarray(v, dtype) for k, v in dyn.options.items() if isinstance(v, float)},
    }
    topo = build_topology(scenario.arrays, scenario.anchor_index, scenario.anchor.coupling, dtype=np.dtype(dtype))
    topology = Topology(*(jnp.asarray(a) for a in topo))
    return config, hyper, topology


def anchor_state(scenario: Scenario, manifold: Manifold, dtype) -> jax.Array:
    a = scenario.anchor
    if a.state == "random":
        return manifold.random_point(jax.random.fold_in(jax.random.key(a.seed), TAG_ANCHOR), (), dtype)
    if a.state == "init":
        return manifold.projx(jnp.asarray(scenario.init.states[scenario.anchor_index], dtype))
    return manifold.projx(jnp.asarray(a.state, dtype))


def initial_configuration(scenario: Scenario, seed: int, dtype) -> jax.Array:
    """The (N, D) starting states for one run seed (or for ``init.seed`` when it is pinned)."""
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    init = scenario.init
    key = jax.random.fold_in(jax.random.key(seed if init.seed is None else init.seed), TAG_INIT)
    return initial_states(
        manifold,
        init.kind,
        key,
        anchor_state(scenario, manifold, dtype),
        scenario.anchor_index,
        scenario.arrays.n_nodes,
        init.spread,
        init.states,
    )


def record_steps(steps: int, every: int) -> np.ndarray:
    """0, every, 2 every, ..., and always the final step."""
    out = list(range(0, steps + 1, every))
    if out[-1] != steps:
        out.append(steps)
    return np.asarray(out, dtype=np.int64)


def simulate(
    scenario: Scenario,
    progress: Callable[[int, int], None] | None = None,
    init_states: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> xr.Dataset:
    """Run a scenario for all of its seeds at once and return the labelled results.

    Parameters
    ----------
    scenario : Scenario
        From ``load_scenario``.
    progress : callable(done_steps, total_steps), optional
        Called after each chunk of the scan; the engine itself never prints.
    init_states : array (S, N, D) or (N, D), optional
        Start from these states instead of the scenario's ``[init]``.
    checkpoint_dir : path, optional
        Save the engine's state here every ``run.checkpoint_every`` steps (by default
        after every chunk); see ``hivemind.checkpoint``.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one. The result
        is bitwise equal to an uninterrupted run's.

    Returns
    -------
    xarray.Dataset
        With ``state(seed, step, agent, coord)``, ``loss(seed, step)``,
        ``distance_to_anchor(seed, step, agent)`` and the graph; see ``results``.

    Raises
    ------
    SimulationDiverged
        If a state becomes NaN or Inf; its ``dataset`` keeps what was recorded.
    SimulationInterrupted
        On Ctrl-C; its ``dataset`` keeps what was recorded, and the checkpoint stays.
    CheckpointError
        If ``resume`` finds a checkpoint of another scenario, or a damaged one.
    """
    precision = scenario.run.precision
    off = checkpoint_dir is None or scenario.run.checkpoint_every == 0
    ckpt = None if off else Path(checkpoint_dir)
    with jax.enable_x64(precision == "float64"):
        return _simulate(scenario, progress, init_states, jnp.dtype(precision), ckpt, resume)


def _simulate(scenario, progress, init_states, dtype, ckpt: Path | None, resume: bool) -> xr.Dataset:
    t0 = time.perf_counter()
    config, hyper, topology = engine_inputs(scenario, dtype)
    seeds = scenario.run.seeds
    if init_states is None:
        x0 = jnp.stack([initial_configuration(scenario, s, dtype) for s in seeds])
    else:
        x0 = jnp.broadcast_to(jnp.asarray(init_states, dtype), (len(seeds), topology.n_nodes, config.manifold.ambient_dim))
    keys = jnp.stack([jax.random.fold_in(jax.random.key(s), TAG_DYNAMICS) for s in seeds])
    x0, keys, topology, layout = sharding.shard(scenario.run.shard, x0, keys, topology)
    carry, first = start(config, hyper, topology, x0, keys)

    steps, every = scenario.dynamics.steps, scenario.record.every
    n_full, rest = divmod(steps, every)
    chunk = max(1, math.ceil(n_full / CHUNKS))
    plan = [(min(chunk, n_full - k), every) for k in range(0, n_full, chunk)]
    if rest:
        plan.append((1, rest))

    records = [sharding.trim(tuple(np.asarray(a)[:, None] for a in first), layout)]
    done, diverged_at, first_chunk = 0, None, 0
    fingerprint = scenario.fingerprint if ckpt is not None else ""
    if ckpt is not None and resume and checkpoint.exists(ckpt):
        template = carry
        carry, records, last, done = checkpoint.load(ckpt, fingerprint, carry)
        carry = jax.tree.map(lambda a, t: jax.device_put(a, t.sharding), carry, template)
        first_chunk = last + 1
        if progress is not None:
            progress(done, steps)
    elif ckpt is not None:
        checkpoint.clear(ckpt)
        checkpoint.save_records(ckpt, -1, records[0])
    interval = scenario.run.checkpoint_every
    saved_at = done

    def dataset(status: str | None = None) -> xr.Dataset:
        states, loss, dist = (np.concatenate(parts, axis=1) for parts in zip(*records, strict=False))
        step_coord = record_steps(steps, every)[: states.shape[1]]
        ds = build_dataset(scenario, step_coord, states, loss, dist, wall_time=time.perf_counter() - t0)
        if status:
            ds.attrs["status"] = status
        return ds

    try:
        for c in range(first_chunk, len(plan)):
            n_records, stride = plan[c]
            carry, rec = advance(config, hyper, topology, carry, n_records, stride)
            rec = sharding.trim(tuple(np.asarray(a) for a in rec), layout)
            finite = np.isfinite(rec[0]).all(axis=(0, 2, 3)) & np.isfinite(rec[1]).all(axis=0)
            if not finite.all():
                bad = int(np.argmin(finite))
                records.append(tuple(a[:, :bad] for a in rec))
                diverged_at = (done + bad * stride, done + (bad + 1) * stride)
                break
            records.append(rec)
            done += n_records * stride
            if ckpt is not None:
                checkpoint.save_records(ckpt, c, rec)
                if interval is None or done - saved_at >= interval or c == len(plan) - 1:
                    checkpoint.save_carry(ckpt, fingerprint, c, done, carry)
                    saved_at = done
            if progress is not None:
                progress(done, steps)
    except KeyboardInterrupt:
        raise SimulationInterrupted(dataset(f"interrupted at step {done}"), done) from None

    ds = dataset()
    if diverged_at is not None:
        lo, hi = diverged_at
        message = (
            f"numerical blow-up (NaN/Inf) between step {lo} and step {hi}; "
            f"try a smaller dynamics.step_size (now {scenario.dynamics.step_size:g})"
        )
        ds.attrs["status"] = f"diverged: {message}"
        raise SimulationDiverged(message, ds, hi)
    if ckpt is not None:
        checkpoint.clear(ckpt)
    return ds
