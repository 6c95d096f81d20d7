"""Wiring: scenario -> topology + manifold + rule -> chunked, jitted, vmapped scan -> Dataset.

What is static (the manifold, the rule's name and schedule kind, the shapes, the
recording stride) picks the compiled code; every number (step size, noise, seeds,
states) is a traced argument, so changing one does not recompile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hivemind.engine import energy, kernel, processes, sharding
from hivemind.engine.initial import initial_states
from hivemind.engine.kernel import EngineConfig, advance, record_steps, start
from hivemind.engine.manifolds import Manifold, get_manifold
from hivemind.engine.topology import Topology, build_topology
from hivemind.errors import InputError
from hivemind.io import checkpoint, records
from hivemind.io.atomic import free_bytes
from hivemind.scenario import Scenario

# Purpose tags folded into seeds, so the anchor, the initial configuration and the
# dynamics draw from independent streams even when their seeds are equal.
TAG_ANCHOR, TAG_INIT, TAG_DYNAMICS = 1, 2, 3


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


def kernel_choice(scenario: Scenario) -> tuple[bool, str]:
    """(fused, why): whether the fused C++ pair kernel computes this run, and one line saying so.

    "auto" (the default) and "fused" take it where it can run: built, on the CPU, the run on
    one device. On ``benchmarks/fused.py`` it is 2.0-2.5x the pure-JAX kernel at 2e4-1e6 agents.
    Elsewhere both fall back to the pure-JAX kernel, which stays the oracle and the path on
    GPUs and across devices; the line says why (the CLI prints it when "fused" was asked for).
    "jax" never takes it.
    """
    asked = scenario.run.kernel
    if asked == "jax":
        return False, "kernel: jax"
    from hivemind.engine import fused

    # A run with run.shard keeps the pure-JAX kernel even on one device: the same program then runs
    # it on one process or many, and "seeds" gives the same bits either way.
    if scenario.run.shard != "none" or jax.device_count() > 1:
        return False, "kernel: jax (the fused kernel runs on one device; run.shard spreads this run)"
    if jax.default_backend() != "cpu":
        return False, f"kernel: jax (the fused kernel is for the CPU; this run is on {jax.default_backend()})"
    ok, why = fused.status()
    return (True, "kernel: fused") if ok else (False, f"kernel: jax ({why.split(': using')[0]})")


def engine_inputs(scenario: Scenario, dtype) -> tuple[EngineConfig, dict, Topology]:
    """The static config, the numeric hyperparameters and the topology of a scenario."""
    dyn = scenario.dynamics
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    static_opts = tuple(sorted((k, v) for k, v in dyn.options.items() if isinstance(v, (bool, str, int))))
    theta = scenario.stubbornness
    features = energy.Features(
        stubborn=bool(np.any(theta > 0)),
        bounded=dyn.confidence is not None,
        active_inertia=scenario.agents.inertia == "active",
        # Agents split over devices would split the pairs too, and the pair kernel's
        # unsorted second sum would cross devices: keep the message kernel there.
        pairs=not scenario.arrays.directed and scenario.run.shard != "agents",
        fused=kernel_choice(scenario)[0],
    )
    config = EngineConfig(manifold, dyn.rule, dyn.noise_schedule, static_opts, features)
    hyper = {
        "step_size": _on_device(dyn.step_size, dtype),
        "noise": _on_device(dyn.noise, dtype),
        "noise_decay": _on_device(dyn.noise_decay, dtype),
        "gossip_prob": _on_device(dyn.gossip_prob, dtype),
        "confidence": _on_device(np.inf if dyn.confidence is None else dyn.confidence, dtype),
        "cluster_tol": _on_device(scenario.record.cluster_tol, dtype),
        "options": {k: _on_device(v, dtype) for k, v in dyn.options.items() if isinstance(v, float)},
    }
    couplings = [a.coupling for a in scenario.anchors]
    topo = build_topology(scenario.arrays, scenario.anchor_indices, couplings, dtype=np.dtype(dtype), stubbornness=theta)
    topology = Topology(*(_on_device(a) for a in topo))
    return config, hyper, topology


def _on_device(value, dtype=None) -> jax.Array:
    """``jnp.asarray(value, dtype)``, converted by numpy: jnp converts on the device, one
    compiled program per conversion, seven of them a run (0.1 s of a second run)."""
    a = np.asarray(value, dtype)
    return jax.device_put(a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False))


def anchor_state(scenario: Scenario, manifold: Manifold, dtype, k: int = 0) -> jax.Array:
    """The state of anchor ``k`` (in the order the scenario gives them)."""
    a = scenario.anchors[k]
    if a.state == "random":
        key = seed_keys(a.seed, TAG_ANCHOR)
        # Anchor k > 0 folds in its position too: anchors with the default seed 0 must not coincide.
        # Drawn eagerly: compiled, its normalisation fuses otherwise and the point can sit an ulp
        # off the engine's fixed point, which would move an anchor at its first step.
        return manifold.random_point(key if k == 0 else jax.random.fold_in(key, k), (), dtype)
    if a.state == "init":
        return manifold.projx(jnp.asarray(scenario.init.states[scenario.anchor_indices[k]], dtype))
    return manifold.projx(jnp.asarray(a.state, dtype))


# Keys come from one compiled program rather than four eager operations per key, each
# lowered on its own even with the compilation cache.
@jax.jit
def _keys(seeds: jax.Array, tag: int) -> jax.Array:
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), tag))(seeds)


def seed_keys(seeds, tag: int) -> jax.Array:
    """``fold_in(key(seed), tag)`` for every seed: (S,) keys; a single key for one int.

    Seeds below 2**32 are one compiled program (the same bits: threefry is integer
    arithmetic); larger ones go as jax.random.key takes them, one by one.
    """
    one = isinstance(seeds, (int, np.integer))
    listed = [seeds] if one else list(seeds)
    if all(0 <= s < 2**32 for s in listed):
        keys = _keys(np.asarray(listed, np.uint32), tag)
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(keys))[0]) if one else keys
    keys = [jax.random.fold_in(jax.random.key(s), tag) for s in listed]
    return keys[0] if one else jnp.stack(keys)


def dynamics_keys(seeds) -> jax.Array:
    """The (S,) keys of the dynamics of runs ``seeds``."""
    return seed_keys(seeds, TAG_DYNAMICS)


def initial_configuration(scenario: Scenario, seed: int, dtype) -> jax.Array:
    """The (N, D) starting states for one run seed (or for ``init.seed`` when it is pinned)."""
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    init = scenario.init
    key = seed_keys(seed if init.seed is None else init.seed, TAG_INIT)
    anchored = bool(scenario.anchor_indices)
    x = initial_states(
        manifold,
        init.kind,
        key,
        anchor_state(scenario, manifold, dtype) if anchored else jnp.zeros(manifold.ambient_dim, dtype),
        scenario.anchor_index if anchored else -1,
        scenario.arrays.n_nodes,
        init.spread,
        None if init.states is None else np.asarray(init.states, np.dtype(dtype)),
    )
    for k in range(1, len(scenario.anchors)):
        x = x.at[scenario.anchor_indices[k]].set(anchor_state(scenario, manifold, dtype, k))
    return x


# One chunk of the scan returns its records to the host at once: at most this many bytes,
# so that memory stays flat however many steps a run records.
CHUNK_RECORD_BYTES = 64 * 2**20


def chunk_plan(scenario: Scenario) -> list[tuple[int, int]]:
    """The engine's chunk plan for ``scenario``, no chunk holding more than ``CHUNK_RECORD_BYTES`` of records."""
    per_record = output_record_bytes(scenario)
    return kernel.chunk_plan(scenario.dynamics.steps, scenario.record.every, max(1, CHUNK_RECORD_BYTES // per_record))


def output_record_bytes(scenario: Scenario) -> int:
    manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
    itemsize = np.dtype(scenario.run.precision).itemsize
    return records.record_bytes(
        len(scenario.run.seeds), scenario.arrays.n_nodes, manifold.ambient_dim, itemsize, len(scenario.anchors)
    )


def point_bytes(s) -> int:
    """Memory one run (or one grid point of a sweep) needs: states, rule state and per-edge temporaries for every seed."""
    d = get_manifold(s.manifold.kind, s.manifold.dim).ambient_dim
    item = np.dtype(s.run.precision).itemsize
    n, e = s.arrays.n_nodes, s.arrays.src.size * (1 if s.arrays.directed else 2)
    rule_copies = 3 if s.dynamics.rule not in ("gradient", "stochastic", "gossip") else 1
    return len(s.run.seeds) * ((4 + rule_copies) * n * d + 4 * e * d) * item


def memory_bytes(scenario: Scenario) -> int:
    """What a run holds in memory at once: every seed's states, rule state and per-edge
    temporaries (``point_bytes``), one chunk of records in flight, and the records kept in
    memory where they are small enough not to go to a file."""
    kept = min(output_bytes(scenario), records.IN_MEMORY_BYTES)
    return point_bytes(scenario) + min(output_record_bytes(scenario) * len(chunk_plan(scenario)), CHUNK_RECORD_BYTES) + kept


def check_memory(scenario: Scenario) -> None:
    """Refuse, in one line naming the key, a run that would not fit this machine's memory,
    before anything of it is allocated (seeds x agents x dimension; the graph was checked
    when the scenario was read)."""
    from hivemind.scenario.graphs import machine_memory
    from hivemind.scenario.spec import ScenarioError

    memory, need = machine_memory(), memory_bytes(scenario)
    if memory is None or need <= memory:
        return
    seeds, n = len(scenario.run.seeds), scenario.arrays.n_nodes
    key = "run.seeds" if seeds > 1 else "graph.n"
    raise ScenarioError(
        scenario.source,
        key,
        f"makes {seeds} seeds x {n:,} agents, about {need / 2**30:,.1f} GiB in memory at once: more than this "
        f"machine's {memory / 2**30:,.0f} GiB",
    )


def output_bytes(scenario: Scenario, every: int | None = None) -> int:
    """Estimated size of a run's ``run.nc`` (records plus the graph), with ``record.every = every``."""
    every = scenario.record.every if every is None else every
    n_records = record_steps(scenario.dynamics.steps, every).size
    graph = scenario.arrays.src.size * 24 + scenario.arrays.n_nodes * 32
    return n_records * (output_record_bytes(scenario) + 8) + graph


class OutOfSpace(InputError, OSError):
    """The records of a run cannot fit the free space where they would be written."""


def check_space(out: Path, scenario: Scenario) -> None:
    """Refuse a run whose records cannot fit the free space of ``out``'s filesystem, before it starts."""
    grown = records.partial_path(out / "run.nc")
    need = output_bytes(scenario) - (grown.stat().st_size if grown.is_file() else 0)  # a resumed run has part of it
    free = free_bytes(out)
    if need <= free:
        return
    every = scenario.record.every
    fits = next((k for k in _doublings(every, scenario.dynamics.steps) if output_bytes(scenario, k) <= 0.9 * free), None)
    hint = f"record.every = {fits} would fit" if fits else "even one record per run would not fit"
    raise OutOfSpace(
        f"{scenario.source}: record.every = {every} would write about {_bytes(need)} into {out}, "
        f"but only {_bytes(free)} are free; {hint}"
    )


def _doublings(start: int, stop: int):
    k = start
    while k < stop:
        k = min(2 * k, stop)
        yield k


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def simulate(
    scenario: Scenario,
    progress: Callable[[int, int], None] | None = None,
    init_states: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    out_file: str | Path | None = None,
) -> xr.Dataset | None:
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
        after every chunk); see ``hivemind.io.checkpoint``.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one. The result
        is bitwise equal to an uninterrupted run's.
    out_file : path, optional
        Stream the records into this NetCDF file as the run goes (``hivemind run``
        writes ``OUT/run.nc`` this way). It grows under a hidden partial name and is
        renamed into place when the run is complete.

    Returns
    -------
    xarray.Dataset
        With ``state(seed, step, agent, coord)``, ``loss(seed, step)``,
        ``distance_to_anchor(seed, step, agent)`` and the graph; see ``results``.
        Records stream to a file whenever ``out_file`` or ``checkpoint_dir`` is given,
        or when they would exceed ``records.IN_MEMORY_BYTES`` (256 MiB): then into a
        temporary directory, whose path is ``ds.encoding["source"]``. A result file up
        to that size is loaded into memory; a larger one is returned lazily backed by
        the file (xarray reads what is indexed), so memory does not grow with steps.
        In a multi-process run (``hivemind.engine.processes``) every process calls
        ``simulate`` alike; process 0 gets the Dataset and writes ``out_file`` and the
        checkpoints, the others get None and write nothing.

    Raises
    ------
    SimulationDiverged
        If a state becomes NaN or Inf; its ``dataset`` keeps what was recorded.
    SimulationInterrupted
        On Ctrl-C; its ``dataset`` keeps what was recorded, and the checkpoint stays.
    RecordsWriteError
        If the records or a checkpoint cannot be written (a full disk, a read-only
        directory); the last checkpoint and the records it points at stay on disk.
    CheckpointError
        If ``resume`` finds a checkpoint of another scenario, or a damaged one.
    PeerLost
        In a multi-process run, when another process stopped; the last checkpoint stays.
    """
    check_memory(scenario)
    precision = scenario.run.precision
    off = checkpoint_dir is None or scenario.run.checkpoint_every == 0
    ckpt = None if off else Path(checkpoint_dir)
    with jax.enable_x64(precision == "float64"):
        return _simulate(scenario, progress, init_states, jnp.dtype(precision), ckpt, resume, out_file)


class RecordsWriteError(OSError):
    """Writing the records or a checkpoint failed; ``step`` is the checkpoint's step (None: no checkpoint)."""

    def __init__(self, message: str, step: int | None):
        super().__init__(message)
        self.step = step


def _record_target(scenario: Scenario, ckpt: Path | None, out_file) -> tuple[Path | None, Path | None]:
    """(where records grow, where the finished file goes); (None, None) keeps them in memory."""
    if out_file is not None:
        final = Path(out_file)
        return records.partial_path(final), final
    if ckpt is not None:
        return ckpt / "records.nc", None
    if output_bytes(scenario) > records.IN_MEMORY_BYTES:
        import tempfile

        final = Path(tempfile.mkdtemp(prefix="hivemind-")) / "run.nc"
        return records.partial_path(final), final
    return None, None


def _simulate(scenario, progress, init_states, dtype, ckpt: Path | None, resume: bool, out_file) -> xr.Dataset:
    t0 = time.perf_counter()
    config, hyper, topology = engine_inputs(scenario, dtype)
    seeds = scenario.run.seeds
    if init_states is None:
        x0 = jnp.stack([initial_configuration(scenario, s, dtype) for s in seeds])
    else:
        x0 = jnp.broadcast_to(jnp.asarray(init_states, dtype), (len(seeds), topology.n_nodes, config.manifold.ambient_dim))
    keys = dynamics_keys(seeds)
    x0, keys, topology, layout = sharding.shard(scenario.run.shard, x0, keys, topology)
    carry, first = start(config, hyper, topology, x0, keys)
    first = sharding.trim({k: processes.to_host(a)[:, None] for k, a in first.items()}, layout)

    steps = scenario.dynamics.steps
    plan = chunk_plan(scenario)
    all_steps = record_steps(steps, scenario.record.every)
    # In a multi-process run, process 0 writes; the others compute, join the gathers and
    # read the checkpoint when resuming, and keep nothing.
    writer = processes.is_writer()
    growing, final = _record_target(scenario, ckpt, out_file) if writer else (None, None)
    done, diverged_at, first_chunk = 0, None, 0
    fingerprint = scenario.fingerprint if ckpt is not None else ""

    def wall() -> float:
        return time.perf_counter() - t0

    try:
        if ckpt is not None and resume and checkpoint.exists(ckpt):
            template = carry
            carry, n_records, last, done = checkpoint.load(ckpt, fingerprint, carry, layout)
            carry = jax.tree.map(lambda a, t: processes.place(a, t.sharding), carry, template)
            if not writer:
                rec = records.DiscardRecords(n_records)
            else:
                rec = checkpoint.open_records(growing, all_steps, n_records)
            if final is not None and final.exists() and growing.exists() and os.path.samefile(final, growing):
                final.unlink()  # the snapshot of the interruption: it would grow with the resumed run
            first_chunk = last + 1
            if progress is not None:
                progress(done, steps)
        else:
            if ckpt is not None and writer:
                checkpoint.clear(ckpt)
            if not writer:
                rec = records.DiscardRecords(first["loss"].shape[1])
            elif growing is None:
                rec = records.MemoryRecords(scenario, all_steps, first)
            else:
                rec = records.FileRecords.create(growing, scenario, all_steps, first)
    except OSError as e:
        raise RecordsWriteError(_write_problem(e, growing), None) from None
    interval = scenario.run.checkpoint_every
    saved_at = done

    def result(status: str) -> xr.Dataset | None:
        """What was recorded so far, marked with ``status`` (at ``final`` too, when there is one)."""
        if isinstance(rec, records.DiscardRecords):
            return None
        if isinstance(rec, records.MemoryRecords):
            return rec.dataset(status, wall())
        shown = final is not None and rec.snapshot(final, status, wall())
        if not shown:
            rec.set_attrs(status=status)
        rec.close()  # HDF5 will not open a file twice in one process
        return records.open_result(final if shown else rec.path)

    try:
        for c in range(first_chunk, len(plan)):
            n_records, stride = plan[c]
            carry, out = advance(config, hyper, topology, carry, n_records, stride)
            out = sharding.trim({k: processes.to_host(a) for k, a in out.items()}, layout)
            finite = np.isfinite(out["state"]).all(axis=(0, 2, 3)) & np.isfinite(out["loss"]).all(axis=0)
            if not finite.all():
                bad = int(np.argmin(finite))
                if bad:
                    rec.append({k: a[:, :bad] for k, a in out.items()})
                diverged_at = (done + bad * stride, done + (bad + 1) * stride)
                break
            rec.append(out)
            del out
            done += n_records * stride
            if ckpt is not None and (interval is None or done - saved_at >= interval or c == len(plan) - 1):
                checkpoint.save_carry(ckpt, fingerprint, c, done, rec.count, carry, layout, execution(scenario))
                saved_at = done
            if progress is not None:
                progress(done, steps)
    except KeyboardInterrupt:
        raise SimulationInterrupted(result(f"interrupted at step {done}"), done) from None
    except OSError as e:
        # The file may hold a half-written chunk; the checkpoint says how much of it is good.
        rec.close()
        kept = saved_at if ckpt is not None and checkpoint.exists(ckpt) else None
        raise RecordsWriteError(_write_problem(e, growing or ckpt), kept) from None
    except Exception as e:
        if processes.count() == 1:
            raise
        # A collective of a multi-process run (a step, a gather, a checkpoint's gather)
        # failed: another process stopped. What is on disk is consistent with the checkpoint.
        rec.close()
        kept = saved_at if ckpt is not None and checkpoint.exists(ckpt) else None
        raise processes.PeerLost(processes.first_line(e), kept) from None

    if diverged_at is not None:
        lo, hi = diverged_at
        message = (
            f"numerical blow-up (NaN/Inf) between step {lo} and step {hi}; "
            f"try a smaller dynamics.step_size (now {scenario.dynamics.step_size:g})"
        )
        raise SimulationDiverged(message, result(f"diverged: {message}"), hi)
    if isinstance(rec, records.DiscardRecords):
        ds = None
    elif isinstance(rec, records.MemoryRecords):
        ds = rec.dataset(None, wall())
    elif final is not None:
        rec.finish(final, wall())
        ds = records.open_result(final)
    else:  # records in the checkpoint directory, which is about to go: keep them in memory
        rec.set_attrs(status="complete", wall_time_s=wall())
        rec.close()
        with xr.open_dataset(rec.path, engine=records.NETCDF_ENGINE) as f:
            ds = f.load()
    if ckpt is not None and writer:
        checkpoint.clear(ckpt)
    return ds


def execution(scenario: Scenario) -> dict:
    """How a run is spread: settings that change where it is computed, not what."""
    return {"run.shard": scenario.run.shard, "devices": jax.device_count(), "processes": jax.process_count()}


def execution_changes(before: dict, now: dict) -> str | None:
    """One line saying how a resumed run is spread otherwise than before its interruption, or None."""
    changed = [f"{k} {before[k]} -> {now[k]}" for k in now if k in before and before[k] != now[k]]
    if not changed:
        return None
    # Another batch width or split agents compile other fusions and sums: a few ulps.
    return (
        f"resuming with other execution settings: {', '.join(changed)}; "
        "what follows may differ from an uninterrupted run's by float rounding"
    )


def _write_problem(error: OSError, where) -> str:
    reason = "no space left on device" if records.is_out_of_space(error) else (error.strerror or str(error))
    return f"cannot write {getattr(error, 'filename', None) or where}: {reason}"
