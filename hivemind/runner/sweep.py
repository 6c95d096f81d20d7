"""Phase diagrams: a whole grid of scenarios as one compiled, batched computation.

Step size, noise, its decay, the gossip probability, the confidence bound, anchor
couplings and a uniform stubbornness are numbers the compiled program takes as
arguments, so a grid of them is one ``jax.vmap`` over grid points (and, inside, over
seeds): one compilation, however many points. Keys that change shapes or the program
(graph size, dimension, rule, manifold, ...) split the grid into groups, compiled once
per distinct value. Grid points run in batches sized to a memory bound, each batch is
saved as it finishes (so a killed sweep redoes at most one), and with several devices a
batch is spread over them along the grid axis. Several processes (``hivemind.engine.
processes``) are several devices the same way: every process runs every batch on its
share of the runs, the results are gathered, and process 0 alone saves them.

A sweep records a summary per point and seed, not every agent: the mean distance to the
nearest anchor on a thinned trajectory, the loss, clusters and dispersion at the end,
and the final states when they are small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hivemind.engine import energy, processes, sharding
from hivemind.engine.kernel import EngineConfig, Lanes, advance, chunk_plan, record_steps, start
from hivemind.engine.manifolds import get_manifold
from hivemind.io.atomic import atomic_write, free_bytes
from hivemind.io.records import NETCDF_ENGINE
from hivemind.runner.simulate import dynamics_keys, engine_inputs, initial_configuration, kernel_choice, point_bytes
from hivemind.scenario.grid import BATCHED, GRID, Grid, SweepError, make_grid, parse_values, point_scenarios  # noqa: F401

# The thinned trajectory keeps at most this many recorded steps per point.
TRAJECTORY_POINTS = 200

# Final states are kept (for bifurcation diagrams) when a point's are at most this many numbers.
MAX_FINAL_STATE = 200_000

# Memory a batch of grid points may take, in bytes (the state, the rule's state, the
# per-edge temporaries, all seeds): ``--memory`` in the CLI.
DEFAULT_MEMORY = 2 * 2**30

# Below the memory bound, batches aim at this working set: past a few tens of MB the pure-JAX
# kernel's per-edge temporaries fall out of cache and a bigger batch runs slower (32 step sizes
# x 8 seeds of the quickstart: 50 s in one batch, 38 s in batches of 8 points, 44 s in 2).
# The fused kernel writes no per-edge temporaries: ``working_bytes`` counts what it works through.
BATCH_TARGET = 24 * 2**20


@dataclass
class Batch:
    """Grid points that share one compiled program."""

    index: np.ndarray  # flat indices into the grid
    config: EngineConfig
    hyper: dict
    topology: object
    axes: tuple  # in_axes of (hyper, topology): 0 where points differ, None where they share


def _stack(trees: list, leaf_equal) -> tuple[object, object]:
    """Stack pytrees along a new axis where their leaves differ; axes tree of 0/None."""
    flat = [jax.tree_util.tree_flatten(t) for t in trees]
    treedef = flat[0][1]
    columns = list(zip(*(f[0] for f in flat), strict=True))
    leaves, axes = [], []
    for col in columns:
        if all(leaf_equal(col[0], c) for c in col[1:]):
            leaves.append(col[0])
            axes.append(None)
        else:
            leaves.append(jnp.stack(col))
            axes.append(0)
    return jax.tree_util.tree_unflatten(treedef, leaves), jax.tree_util.tree_unflatten(treedef, axes)


def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def _structure(grid: Grid, point: tuple) -> tuple:
    return tuple(repr(v) for k, v in zip(grid.keys, point, strict=True) if not BATCHED.match(k))


def sweep(
    scenario,
    grid: dict[str, Sequence] | Grid,
    seeds: int | Sequence[int] = 1,
    tol: float = 1e-3,
    progress: Callable[[int, int], None] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    memory: int = DEFAULT_MEMORY,
) -> xr.Dataset | None:
    """Run ``scenario`` at every point of ``grid`` and every seed; return the summary Dataset.

    Parameters
    ----------
    scenario : Scenario
        From ``load_scenario``; its ``--set`` overrides are kept.
    grid : dict
        ``{"dynamics.step_size": [0.01, 0.02], "anchor.coupling": [1, 2]}``: any scenario
        key; the grid is the Cartesian product.
    seeds : int or sequence of int
        K (seeds 0..K-1) or the seeds themselves; every point runs every seed.
    tol : float
        ``steps_to_tolerance`` is the first recorded step where the mean distance to the
        nearest anchor falls below it.
    progress : callable(done_points, total_points), optional
    out : path, optional
        Save each finished batch under ``out/batches/`` so that ``resume`` can skip it.
    memory : int
        Bytes a batch of points may take; see ``point_bytes``.

    Returns
    -------
    xarray.Dataset, or None on every process but process 0 of a multi-process sweep
        Dimensions: one per swept key (named by the key), ``seed``, and ``step`` for the
        thinned trajectory ``mean_distance``; variables ``final_mean_distance``,
        ``steps_to_tolerance``, ``final_loss``, ``diverged``, ``clusters``,
        ``largest_cluster_share``, ``dispersion``, and ``final_state`` when small.
    """
    grid = make_grid(grid)
    for key in grid.keys:
        if key in ("run.seed", "run.seeds"):
            raise SweepError(f"{key}: seeds are not a grid key; every point runs every seed of the sweep", GRID)
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SweepError(f"seeds: must be a count >= 1 or distinct seeds >= 0, got {seeds!r}", "--")
    scenarios = point_scenarios(scenario, grid, seeds)
    base = scenarios[0]
    steps = base.dynamics.steps
    if any(s.dynamics.steps != steps for s in scenarios):
        raise SweepError("dynamics.steps: cannot be swept; every point must record the same steps", GRID)
    every = max(base.record.every, math.ceil(steps / TRAJECTORY_POINTS))
    writer = processes.is_writer()
    check_resources(grid, scenarios, steps, every, memory)
    batches = _batches(grid, scenarios, memory)
    n_points = len(scenarios)
    results: dict[int, dict] = {}
    store = refusal = None
    if out is not None and writer:  # OUT is process 0's: its disk, its saved batches
        store = _BatchStore(Path(out) / "batches", _fingerprint(scenario, grid, seeds, tol))
        try:
            check_disk(grid, scenarios, steps, every, out)
            if resume:
                results.update(store.load())
        except SweepError as e:
            refusal = e
    # Every process must run the same batches, or none: process 0, which read OUT, says which.
    flags = processes.broadcast_flags([refusal is not None] + [k in results for k in range(len(batches))])
    if refusal is not None:
        raise refusal
    if flags[0]:
        raise SweepError(f"{out}: process 0 refused to sweep there (its own message says why)")
    skip = flags[1:]
    done = sum(len(b.index) for b, saved in zip(batches, skip, strict=True) if saved)
    if progress is not None:
        progress(done, n_points)
    for k, batch in enumerate(batches):
        if skip[k]:
            continue
        try:
            part = _run_batch(batch, scenarios[int(batch.index[0])], seeds, steps, every, tol)
        except Exception as e:
            if processes.count() == 1:
                raise
            # A collective failed: another process stopped. The saved batches stay.
            raise processes.PeerLost(processes.first_line(e), done) from None
        if not writer:
            continue
        results[k] = part
        if store is not None:
            store.save(k, part)
        done += len(batch.index)
        if progress is not None:
            progress(done, n_points)
    if not writer:
        return None
    return _dataset(scenario, grid, seeds, steps, every, tol, results, scenarios)


def check_resources(grid: Grid, scenarios: list, steps: int, every: int, memory: int, out=None) -> None:
    """Refuse, before anything runs, a grid whose points do not fit the memory bound or whose
    results do not fit the free disk space of ``out``; the message names the key that makes them big."""

    sizes = [point_bytes(s) for s in scenarios]
    worst = int(np.argmax(sizes))
    structural = [k for k in grid.keys if not BATCHED.match(k)]
    blame, prefix = (structural[0], GRID) if structural else ("memory", "--")
    if sizes[worst] > memory:
        raise SweepError(
            f"{blame}: one grid point needs about {sizes[worst] / 2**20:.0f} MB, more than the memory bound "
            f"({memory / 2**20:.0f} MB)",
            prefix,
        )
    fused = kernel_choice(scenarios[worst])[0]
    batch = sizes[worst] * points_per_batch(sizes[worst], memory, working_bytes(scenarios[worst], fused))
    available = _available_memory()
    if available is not None and batch > available:
        raise SweepError(
            f"memory: a batch takes about {batch / 2**20:.0f} MB, but only {available / 2**20:.0f} MB are free", "--"
        )
    if out is not None:
        check_disk(grid, scenarios, steps, every, out)


def check_disk(grid: Grid, scenarios: list, steps: int, every: int, out) -> None:
    """Refuse a grid whose results do not fit the free disk space of ``out``."""
    n_records = record_steps(steps, every).size
    final = max(s.arrays.n_nodes * get_manifold(s.manifold.kind, s.manifold.dim).ambient_dim for s in scenarios)
    per_run = (n_records + 8) * 8 + (final * 8 if final <= MAX_FINAL_STATE else 0)
    need = len(scenarios) * len(scenarios[0].run.seeds) * per_run
    free = free_bytes(out)
    if need > free:
        raise SweepError(
            f"{grid.keys[0]}: the sweep would write about {need / 1e6:.0f} MB, only {free / 1e6:.0f} MB are free", GRID
        )


def _available_memory() -> int | None:
    """Memory the system can give without swapping (psutil: Linux, macOS, Windows), or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return None


def sweep_manifest(scenario, grid: Grid, ds: xr.Dataset) -> dict:
    """What ``sweep.json`` records: the grid, the scenario, the seeds and the versions, as ``manifest.json`` does."""
    from hivemind.io.documents import SWEEP_VERSION
    from hivemind.io.results import versions

    return {
        "schema_version": SWEEP_VERSION,
        "grid": grid.to_dict(),
        "seeds": [int(s) for s in ds.seed.values],
        "tolerance": ds.attrs["tolerance"],
        "scenario": scenario.to_dict(),
        "scenario_file": scenario.source,
        "scenario_sha256": scenario.sha256,
        "scenario_fingerprint": scenario.fingerprint,
        "scenario_text": scenario.text,
        "devices": [str(d) for d in jax.devices()],
        "versions": versions(),
    }


def points_per_batch(point: int, memory: int, working: int | None = None) -> int:
    """Grid points per batch: as many as fit ``BATCH_TARGET`` with ``working`` bytes each (the
    step's working set; ``point`` when not given) and ``memory`` with ``point`` bytes each, at least one."""
    working = point if working is None else working
    return max(1, min(memory // max(point, 1), BATCH_TARGET // max(working, 1)))


def working_bytes(s, fused: bool) -> int:
    """The bytes a step of one grid point works through: ``point_bytes``, less the per-edge
    temporaries where the fused kernel computes the pull (it writes none). The target is about
    caches: with the fused kernel 32 step sizes x 8 seeds of the quickstart took 14.8 s in
    four batches and 12.0 s in one (benchmarks/sweep.py)."""
    if not fused:
        return point_bytes(s)
    d = get_manifold(s.manifold.kind, s.manifold.dim).ambient_dim
    rule_copies = 3 if s.dynamics.rule not in ("gradient", "stochastic", "gossip") else 1
    return len(s.run.seeds) * (4 + rule_copies) * s.arrays.n_nodes * d * np.dtype(s.run.precision).itemsize


def _batches(grid: Grid, scenarios: list, memory: int) -> list[Batch]:
    """Points grouped by program, each group cut into batches that fit ``memory``; deterministic."""
    groups: dict[tuple, list[int]] = {}
    for i, point in enumerate(grid.points()):
        groups.setdefault(_structure(grid, point), []).append(i)
    out = []
    n_dev = jax.device_count()
    for members in groups.values():
        first = scenarios[members[0]]
        dtype = jnp.dtype(first.run.precision)
        with jax.enable_x64(dtype == jnp.float64):
            inputs = [engine_inputs(scenarios[i], dtype) for i in members]
        # Stubbornness 0 and an infinite bound compute the plain drift exactly, so a group
        # that sweeps into them runs the program of its points that need them: one compile.
        features = energy.Features(*(any(getattr(c.features, f) for c, _, _ in inputs) for f in energy.Features._fields))
        # The pair kernel is a choice of kernel that only undirected graphs allow: all points, or none.
        features = features._replace(pairs=all(c.features.pairs for c, _, _ in inputs))
        per = points_per_batch(point_bytes(first), memory, working_bytes(first, features.fused))
        if n_dev > 1:
            per = max(n_dev, per - per % n_dev)
        for lo in range(0, len(members), per):
            out.append(_prepare(np.asarray(members[lo : lo + per]), inputs[lo : lo + per], features))
    return out


def _prepare(index: np.ndarray, inputs: list, features: energy.Features) -> Batch:
    """One static config for the batch, its numbers stacked where the points differ."""
    configs = {replace(c, features=features) for c, _, _ in inputs}
    if len(configs) != 1:  # pragma: no cover - BATCHED keys never change the static config
        raise SweepError("grid points of one batch compile differently; sweep that key on its own")
    hypers = [h for _, h, _ in inputs]
    hyper, h_axes = _stack(hypers, _equal)
    topology, t_axes = _stack([t for _, _, t in inputs], _equal)
    if all(a is None for a in jax.tree_util.tree_leaves((h_axes, t_axes), is_leaf=lambda x: x is None)):
        # Nothing differs (one point, or structural keys only): vmap still needs one batched leaf.
        hyper = dict(hyper, step_size=jnp.stack([h["step_size"] for h in hypers]))
        h_axes = dict(h_axes, step_size=0)
    return Batch(index, configs.pop(), hyper, topology, (h_axes, t_axes))


def _run_batch(batch: Batch, first, seeds, steps: int, every: int, tol: float) -> dict:
    dtype = jnp.dtype(first.run.precision)
    n_points, n_seeds = len(batch.index), len(seeds)
    plan = chunk_plan(steps, every)
    with jax.enable_x64(dtype == jnp.float64):
        x0 = jnp.stack([initial_configuration(first, s, dtype) for s in seeds])
        keys = dynamics_keys(seeds)
        hyper, topology, x0, keys, n_runs = _runs(batch, x0, keys)
        lanes = Lanes.of(*batch.axes)
        carry, obs = start(batch.config, hyper, topology, x0, keys, lanes)
        # to_host gathers the runs of every process (a collective: all of them, in this order).
        parts = [jax.tree.map(lambda a: processes.to_host(a)[:, None], obs)]
        for n_records, stride in plan:
            carry, obs = advance(batch.config, hyper, topology, carry, n_records, stride, lanes)
            parts.append(jax.tree.map(processes.to_host, obs))
        final_states = processes.to_host(carry.states)[:n_runs]

    def per_point(a):  # (runs, ...) -> (points, seeds, ...): runs are point-major
        return a[:n_runs].reshape(n_points, n_seeds, *a.shape[1:])

    rec = {k: per_point(np.concatenate([p[k] for p in parts], axis=1)) for k in parts[0]}  # (B, S, T)
    final_states = per_point(final_states)
    recorded = record_steps(steps, every)
    below = rec["mean_distance"] < tol
    first_below = np.where(below.any(axis=2), recorded[np.argmax(below, axis=2)], -1)
    out = {
        "index": batch.index,
        "trajectory": rec["mean_distance"],
        "final_mean_distance": rec["mean_distance"][:, :, -1],
        "steps_to_tolerance": first_below,
        "final_loss": rec["loss"][:, :, -1],
        "clusters": rec["clusters"][:, :, -1],
        "largest_cluster_share": rec["largest_cluster_share"][:, :, -1],
        "dispersion": rec["dispersion"][:, :, -1],
        "diverged": ~np.isfinite(final_states).all(axis=(2, 3)) | ~np.isfinite(rec["loss"][:, :, -1]),
    }
    if final_states[0].size <= MAX_FINAL_STATE:
        out["final_state"] = final_states
    return out


def _runs(batch: Batch, x0: jax.Array, keys: jax.Array):
    """Points x seeds as one flat axis of runs (point-major), on the devices: split along that
    axis when there are several, padded to a multiple of their count with copies of the last run."""
    n_points, n_seeds = len(batch.index), x0.shape[0]
    n_runs = n_points * n_seeds
    h_axes, t_axes = batch.axes

    def per_run(tree, axes):
        def one(a, ax):
            return a if ax is None else jnp.repeat(a, n_seeds, axis=0)

        return jax.tree.map(one, tree, axes, is_leaf=lambda x: x is None)

    hyper, topology = per_run(batch.hyper, h_axes), per_run(batch.topology, t_axes)
    x0 = jnp.tile(x0, (n_points,) + (1,) * (x0.ndim - 1))
    keys = jnp.tile(keys, (n_points,))
    n_dev = jax.device_count()
    if n_dev == 1:
        return hyper, topology, x0, keys, n_runs
    pad = -n_runs % n_dev
    split = jax.sharding.NamedSharding(sharding.mesh(), jax.sharding.PartitionSpec(sharding.AXIS))
    whole = jax.sharding.NamedSharding(sharding.mesh(), jax.sharding.PartitionSpec())

    def place(a, ax=0):
        if ax is None:
            return processes.place(a, whole)
        a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) if pad else a
        return processes.place(a, split)

    def place_tree(tree, axes):
        return jax.tree.map(place, tree, axes, is_leaf=lambda x: x is None)

    return place_tree(hyper, h_axes), place_tree(topology, t_axes), place(x0), place(keys), n_runs


def _fingerprint(scenario, grid: Grid, seeds, tol) -> str:
    import hashlib
    import json

    data = {"scenario": scenario.fingerprint, "grid": grid.to_dict(), "seeds": list(seeds), "tol": tol}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class _BatchStore:
    """Finished batches on disk, each written atomically, tagged with the sweep's fingerprint."""

    def __init__(self, directory: Path, fingerprint: str):
        self.directory = directory
        self.fingerprint = fingerprint

    def save(self, k: int, part: dict) -> None:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, fingerprint=np.asarray(self.fingerprint), **part)

        atomic_write(self.directory / f"batch_{k:05d}.npz", write)

    def load(self) -> dict[int, dict]:
        out = {}
        for path in sorted(self.directory.glob("batch_*.npz")):
            try:
                with np.load(path) as f:
                    if str(f["fingerprint"]) != self.fingerprint:
                        raise SweepError(
                            f"{path.parent.parent}: the saved batches are of another sweep (scenario, grid, seeds or tol)"
                        )
                    out[int(path.stem.split("_")[1])] = {k: f[k] for k in f.files if k != "fingerprint"}
            except SweepError:
                raise  # a ValueError too, but not a torn batch: another sweep's, which --resume must not overwrite
            except (OSError, ValueError, KeyError, EOFError):
                continue  # a batch torn by the kill: it runs again
        return out


def _coordinate(values: tuple) -> np.ndarray:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)
    return np.asarray([str(v) for v in values], dtype=object)


def _dataset(scenario, grid: Grid, seeds, steps: int, every: int, tol: float, results: dict, scenarios) -> xr.Dataset:
    shape = grid.shape
    n = int(np.prod(shape))
    s = len(seeds)
    recorded = record_steps(steps, every)

    def gather(name, fill, extra=()):
        first = next(iter(results.values()))[name]
        out = np.full((n, s, *first.shape[2:]), fill, dtype=first.dtype if fill is not np.nan else float)
        for part in results.values():
            out[part["index"]] = part[name]
        return out.reshape(*shape, s, *first.shape[2:])

    dims = (*grid.keys, "seed")
    steps_to = gather("steps_to_tolerance", -1)
    data = {
        "final_mean_distance": (
            dims,
            gather("final_mean_distance", np.nan),
            {"long_name": "mean distance to the nearest anchor at the end"},
        ),
        "steps_to_tolerance": (
            dims,
            np.where(steps_to < 0, np.nan, steps_to),
            {"long_name": f"first recorded step with mean distance below {tol:g} (NaN: never)"},
        ),
        "final_loss": (dims, gather("final_loss", np.nan), {"long_name": "global loss at the end"}),
        "diverged": (dims, gather("diverged", True).astype(np.int8), {"long_name": "1 if the run blew up (NaN or Inf)"}),
        "clusters": (dims, gather("clusters", -1), {"long_name": "clusters at the end"}),
        "largest_cluster_share": (dims, gather("largest_cluster_share", np.nan), {"long_name": "the largest cluster's share"}),
        "dispersion": (dims, gather("dispersion", np.nan), {"long_name": "mean pairwise distance of a sample at the end"}),
        "mean_distance": (
            (*dims, "step"),
            gather("trajectory", np.nan),
            {"long_name": "mean distance to the nearest anchor (thinned)"},
        ),
    }
    coords = {k: (k, _coordinate(v)) for k, v in zip(grid.keys, grid.values, strict=True)}
    coords |= {"seed": ("seed", np.asarray(seeds, np.int64)), "step": ("step", recorded)}
    shapes = {part["final_state"].shape[2:] if "final_state" in part else None for part in results.values()}
    if len(shapes) == 1 and None not in shapes:  # groups of different sizes (a swept graph.n) keep none
        data["final_state"] = ((*dims, "agent", "coord"), gather("final_state", np.nan), {"long_name": "final states"})
    from hivemind.theory.linear import MAX_DENSE_AGENTS, predicted_rate

    ds = xr.Dataset(data, coords=coords)
    lam_max = np.full(n, np.nan)
    rate = np.full(n, np.nan)
    for i, sc in enumerate(scenarios):
        linear = sc.dynamics.rule == "gradient" and sc.dynamics.confidence is None and sc.agents.inertia != "active"
        if not linear or sc.arrays.n_nodes > MAX_DENSE_AGENTS:
            continue  # the linear theory needs a fixed operator and a dense spectrum
        theta = sc.stubbornness if np.any(sc.stubbornness) else None
        pred = predicted_rate(sc.arrays, sc.anchor_indices, [a.coupling for a in sc.anchors], sc.dynamics.step_size, theta)
        lam_max[i], rate[i] = pred.lambda_max, pred.rate if pred.stable else np.nan
    ds["lambda_max"] = (grid.keys, lam_max.reshape(shape), {"long_name": "largest eigenvalue of the grounded operator"})
    ds["predicted_rate"] = (
        grid.keys,
        rate.reshape(shape),
        {"long_name": "linear rate the grounded operator predicts (NaN: unstable or no theory)"},
    )
    ds.attrs.update(
        scenario=scenario.name,
        manifold=scenario.manifold.kind,
        dim=scenario.manifold.dim,
        rule=scenario.dynamics.rule,
        steps=steps,
        tolerance=tol,
        swept=";".join(grid.keys),  # one string: NetCDF turns a one-item list of strings into a string
        kind="sweep",
    )
    return ds


def save_sweep(ds: xr.Dataset, out: str | Path) -> Path:
    path = Path(out) / "sweep.nc"
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))
    return path


def swept_keys(ds: xr.Dataset) -> list[str]:
    """The swept keys of a sweep's Dataset, in grid order."""
    return str(ds.attrs["swept"]).split(";")
