"""``hivemind bench``: the engine raced against what a user would write instead.

Every comparison runs the same anchored consensus (geodesic ``gradient`` rule on the
sphere S^d, scale-free graphs from ``graphs.preferential_attachment``) from the same
starting states, checks that the implementations agree, and reports ratios measured in
the same process, never bare times alone. Goals are reported, not asserted:

- N = 10^5 agents, T = 200 steps: >= 15x the vectorized numpy step with ``np.add.at``
  and >= 8x with a scipy sparse scatter, >= 1000x the per-agent Python loop
  (timed on small N and extrapolated linearly in edges); the pair kernel against the
  message kernel it replaced, and a profile of the step (``step_profile``);
- time per step linear in the number of edges (the log-log slope);
- edge updates per second as a fraction of the machine's copy bandwidth (>= 20%);
- 10^6 agents within 4 GB of peak resident memory (measured in a child process);
- 256 seeds vmapped >= 5x faster than a Python loop over seeds, with equal results.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.bench import baselines
from hivemind.runner.simulate import advance, dynamics_keys, engine_inputs, initial_configuration, simulate, start
from hivemind.scenario import Scenario, parse_scenario

# Implementations agree when their states after the same steps differ by less than this
# (float32 engine against float32 numpy and float64 Python: rounding, not mathematics).
AGREE_TOL = 1e-4
# x numpy np.add.at the fused kernel aims at, per size (20 000 is the size no kernel was tuned on).
FUSED_GOALS = {20_000: 15.0, 100_000: 25.0, 1_000_000: 30.0}


@dataclass(frozen=True)
class BenchOptions:
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    steps: int = 200  # engine steps per timing (the goal's T)
    big_steps: int = 20  # engine steps at N >= 10^6, where one step takes ~0.3 s here
    numpy_seconds: float = 3.0  # time budget per numpy timing; at least 2 steps
    loop_sizes: tuple[int, ...] = (1_000, 10_000)
    m: int = 3  # edges per new node: ~6 directed edges per agent
    dim: int = 16
    goal_n: int = 100_000
    edge_sweep_n: int = 100_000
    edge_sweep_m: tuple[int, ...] = (1, 2, 4, 8, 16)
    ensemble_seeds: int = 256
    ensemble_ns: tuple[int, ...] = (100, 1_000)
    ensemble_steps: int = 200
    memory_n: int = 1_000_000
    memory_steps: int = 20
    memory_limit_gb: float = 4.0
    repeats: int = 3  # steady runs per engine timing; the best counts


QUICK = BenchOptions(
    sizes=(300, 1_000, 3_000),
    steps=20,
    big_steps=20,
    numpy_seconds=0.2,
    loop_sizes=(300,),
    goal_n=3_000,
    edge_sweep_n=1_000,
    edge_sweep_m=(1, 2, 4),
    ensemble_seeds=16,
    ensemble_ns=(100,),
    ensemble_steps=20,
    memory_n=10_000,
    memory_steps=5,
    repeats=1,
)


def scenario(n: int, opts: BenchOptions, steps: int, seeds: tuple[int, ...] = (0,)) -> Scenario:
    """The benchmark's scenario: anchored gradient consensus on S^dim over a scale-free graph.

    Agents start in a cap of radius 1 rad around the anchor, with degree inertia and
    step 0.5, where the dynamics contract: hubs of a scale-free graph hear thousands of
    neighbours, and a unit inertia would make any fixed step unstable there, so that
    rounding alone sends two correct implementations different ways.
    """
    text = f"""
name = "bench_{n}"
[manifold]
kind = "sphere"
dim = {opts.dim}
[graph]
kind = "preferential_attachment"
n = {n}
params = {{ m = {opts.m} }}
[init]
kind = "cap"
spread = 1.0
[agents]
inertia = "degree"
[dynamics]
rule = "gradient"
step_size = 0.5
steps = {steps}
[record]
every = {steps}
[run]
seeds = {list(seeds)}
"""
    return parse_scenario(text, f"<bench N={n}>")


class Engine:
    """hivemind's compiled step loop on one scenario, timed apart from its compilation."""

    def __init__(self, sc: Scenario, pairs: bool | None = None, repeats: int = 3, fused: bool | None = None):
        dtype = jnp.float32
        self.repeats = repeats
        self.config, self.hyper, self.topology = engine_inputs(sc, dtype)
        if pairs is not None:  # force the pair kernel on or off, to race the two
            self.config = replace(self.config, features=self.config.features._replace(pairs=pairs))
        if fused is not None:  # force the fused C++ kernel on or off (run.kernel), to race it with pure JAX
            self.config = replace(self.config, features=self.config.features._replace(fused=fused))
        self.x0 = jnp.stack([initial_configuration(sc, s, dtype) for s in sc.run.seeds])
        self.keys = dynamics_keys(sc.run.seeds)

    def run(self, steps: int, repeats: int | None = None) -> tuple[float, float, np.ndarray]:
        """(compile + first run seconds, best steady run seconds, final states) for ``steps`` steps.

        Best of ``repeats`` steady runs: on a shared 2-core machine one run in five is
        slowed by a neighbour by 20-50%, and the minimum is what the code costs.
        """
        times = []
        for _ in range(1 + (self.repeats if repeats is None else repeats)):
            t = time.perf_counter()
            # A copy: ``start`` may hand x0's buffer through to the carry that ``advance`` donates.
            carry, _ = start(self.config, self.hyper, self.topology, jnp.copy(self.x0), self.keys)
            carry, rec = advance(self.config, self.hyper, self.topology, carry, 1, steps)
            states = np.asarray(rec["state"][:, -1])
            times.append(time.perf_counter() - t)
        return times[0], min(times[1:]), states


def memory_bandwidth(nbytes: int = 1 << 28) -> float:
    """Copy bandwidth in bytes/s (bytes read plus bytes written), best of 5."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = min(_timed(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _numpy_inputs(engine: Engine):
    topo = engine.topology
    return (
        np.asarray(topo.senders),
        np.asarray(topo.receivers),
        np.asarray(topo.weights),
        np.asarray(topo.inv_inertia),
        float(engine.hyper["step_size"]),
    )


def _time_numpy(engine: Engine, budget_s: float, matrix) -> tuple[float, int, np.ndarray]:
    """Seconds per step of ``baselines.numpy_step`` and its states after the steps it took."""
    snd, rcv, w, inv, eta = _numpy_inputs(engine)
    x = np.asarray(engine.x0[0])
    t0 = time.perf_counter()
    steps = 0
    while steps < 2 or time.perf_counter() - t0 < budget_s:
        x = baselines.numpy_step(x, snd, rcv, w, inv, eta, matrix)
        steps += 1
    return (time.perf_counter() - t0) / steps, steps, x


def _time_loop(engine: Engine, steps: int) -> tuple[float, np.ndarray]:
    snd, rcv, w, inv, eta = _numpy_inputs(engine)
    agents = baselines.agent_model(np.asarray(engine.x0[0], np.float64), snd, rcv, w, inv)
    t0 = time.perf_counter()
    for _ in range(steps):
        baselines.loop_step(agents, eta)
    return (time.perf_counter() - t0) / steps, np.stack([a.state for a in agents])


def _agreement(engine: Engine, steps: int, other: np.ndarray) -> float:
    _, _, states = engine.run(steps, repeats=1)
    return float(np.max(np.abs(states[0] - other)))


def compare_sizes(opts: BenchOptions, log: Callable[[str], None]) -> list[dict]:
    """Time per step of every implementation at every N, with their agreement."""
    rows = []
    for n in opts.sizes:
        sc = scenario(n, opts, opts.steps)
        engine = Engine(sc, repeats=opts.repeats)  # run.kernel = "auto": the fused kernel where it was built
        steps = opts.big_steps if n >= 1_000_000 else opts.steps
        first, steady, states = engine.run(steps)
        row = {
            "n": n,
            "edges": engine.topology.n_messages,
            "engine_kernel": "fused" if engine.config.features.fused else "jax",
            "engine_steps": steps,
            "engine_step_s": steady / steps,
            "engine_compile_s": max(first - steady, 0.0),
            "step_bytes": step_bytes(n, engine.topology.n_messages, int(engine.x0.shape[-1])),
        }
        if row["engine_kernel"] == "fused":  # the pure-JAX kernel beside it, same scenario, same run
            _, steady_jax, states_jax = Engine(sc, repeats=opts.repeats, fused=False).run(steps)
            row["jax_step_s"] = steady_jax / steps
            row["jax_max_diff"] = float(np.max(np.abs(states - states_jax)))
        snd, rcv, *_ = _numpy_inputs(engine)
        for name, matrix in (("numpy_add_at", None), ("numpy_sparse", baselines.scatter_matrix(rcv, n))):
            per_step, k, x = _time_numpy(engine, opts.numpy_seconds, matrix)
            row[f"{name}_step_s"] = per_step
            row[f"{name}_steps"] = k
            row[f"{name}_max_diff"] = _agreement(engine, k, x)
        if n in opts.loop_sizes:
            k = 1 if n > 3_000 else 2
            per_step, x = _time_loop(engine, k)
            row["loop_step_s"] = per_step
            row["loop_steps"] = k
            row["loop_max_diff"] = _agreement(engine, k, x)
        rows.append(row)
        jax_part = ""
        if "jax_step_s" in row:
            jax_part = f" (pure JAX {row['jax_step_s'] * 1e3:.3f}: fused x{row['jax_step_s'] / row['engine_step_s']:.2f})"
        log(
            f"  N={n:>9,} E={row['edges']:>10,}  engine, {row['engine_kernel']} kernel {row['engine_step_s'] * 1e3:9.3f} ms/step"
            + jax_part
            + f"  numpy add.at x{row['numpy_add_at_step_s'] / row['engine_step_s']:7.1f}"
            f"  numpy sparse x{row['numpy_sparse_step_s'] / row['engine_step_s']:6.1f}"
            + (f"  loop x{row['loop_step_s'] / row['engine_step_s']:9.0f}" if "loop_step_s" in row else "")
        )
    return rows


def step_bytes(n: int, edges: int, coords: int, itemsize: int = 4) -> int:
    """Bytes one step cannot avoid moving: every agent's state read and written, every edge's
    sender state, sender index and weight read (the receiver's row is read once per agent)."""
    return (2 * n * coords + edges * coords) * itemsize + edges * 8


def edge_sweep(opts: BenchOptions, log: Callable[[str], None]) -> dict:
    """Engine time per step at fixed N against the number of edges, and the log-log slope."""
    points = []
    for m in opts.edge_sweep_m:
        engine = Engine(scenario(opts.edge_sweep_n, replace(opts, m=m), opts.steps), repeats=opts.repeats)
        _, steady, _ = engine.run(opts.steps)
        points.append({"m": m, "edges": engine.topology.n_messages, "engine_step_s": steady / opts.steps})
    e = np.log([p["edges"] for p in points])
    t = np.log([p["engine_step_s"] for p in points])
    slope = float(np.polyfit(e, t, 1)[0])
    log(
        f"  N={opts.edge_sweep_n:,}: time per step ~ edges^{slope:.2f} over {points[0]['edges']:,}..{points[-1]['edges']:,} edges"
    )
    return {"n": opts.edge_sweep_n, "points": points, "slope": slope}


def geometry_kernel(opts: BenchOptions, n_pairs: int, log: Callable[[str], None]) -> dict | None:
    """Batched Exp_x(Log_x(y)/2) over ``n_pairs`` point pairs: hivemind's jitted kernel against geomstats."""
    kernel = baselines.geomstats_kernel(opts.dim)
    if kernel is None:
        log("  geomstats not installed (pip install 'hivemind[bench]'): kernel comparison skipped")
        return None
    from hivemind.engine.manifolds import get_manifold

    sphere = get_manifold("sphere", opts.dim)
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((n_pairs, opts.dim + 1)) for _ in range(2))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    ours = jax.jit(lambda a, b: sphere.exp(a, 0.5 * sphere.log(a, b)))
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    ours(xj, yj).block_until_ready()
    t_ours = min(_timed(lambda: ours(xj, yj).block_until_ready()) for _ in range(5))
    t_gs = min(_timed(lambda: kernel(x, y)) for _ in range(3))
    diff = float(np.max(np.abs(np.asarray(ours(xj, yj)) - kernel(x, y))))
    log(f"  {n_pairs:,} pairs: hivemind {t_ours * 1e3:.2f} ms, geomstats {t_gs * 1e3:.2f} ms: x{t_gs / t_ours:.1f}")
    return {"pairs": n_pairs, "hivemind_s": t_ours, "geomstats_s": t_gs, "max_diff": diff}


def kernel_race(opts: BenchOptions, log: Callable[[str], None], kinds: tuple[str, ...] = ("sphere", "hyperbolic")) -> list[dict]:
    """The pair kernel against the message kernel at ``goal_n`` agents on each manifold, same scenario otherwise."""
    import dataclasses

    rows = []
    for kind in kinds:
        sc = scenario(opts.goal_n, opts, opts.steps)
        sc = dataclasses.replace(sc, manifold=dataclasses.replace(sc.manifold, kind=kind))
        timed = {}
        for pairs in (False, True):  # two pure-JAX kernels: the fused one replaces both where it runs
            _, steady, states = Engine(sc, pairs=pairs, repeats=opts.repeats, fused=False).run(opts.steps)
            timed[pairs] = (steady / opts.steps, states)
        diff = float(np.max(np.abs(timed[True][1] - timed[False][1])))
        row = {
            "manifold": kind,
            "message_step_s": timed[False][0],
            "pair_step_s": timed[True][0],
            "speedup": timed[False][0] / timed[True][0],
            "max_diff": diff,
        }
        rows.append(row)
        log(
            f"  {kind:<10} message kernel {row['message_step_s'] * 1e3:8.2f} ms/step, pair kernel "
            f"{row['pair_step_s'] * 1e3:8.2f} ms/step: x{row['speedup']:.2f} (states differ by {diff:.1e})"
        )
    return rows


def step_profile(opts: BenchOptions, log: Callable[[str], None], steps: int = 20) -> dict:
    """Where a step's time goes at ``goal_n`` agents, from prefixes of the step timed in the same scan.

    scatter: summing precomputed messages into their receivers (both directions);
    gathers: reading both endpoints of every pair (prefix minus scatter); geometry: the
    pair logarithms (the pull minus the two before); update: inertia and Exp (the step
    minus the pull). ``transcendental`` is the time saved when the one ``arctan2`` per
    pair is replaced by a division, an upper bound on what a cheaper approximation could
    save.
    """
    from functools import partial

    from hivemind.engine import energy

    engine = Engine(scenario(opts.goal_n, opts, steps))
    manifold, topo = engine.config.manifold, engine.topology
    x0 = engine.x0[0]
    n = x0.shape[0]
    # Everything enters as an argument: a closed-over array would be constant-folded.
    args = {
        "a": topo.receivers[topo.half],
        "b": topo.senders[topo.half],
        "m": manifold.log_pair(x0[topo.receivers[topo.half]], x0[topo.senders[topo.half]])[0],
        "topo": topo,
        "eta": engine.hyper["step_size"],
    }

    def seg(m, idx, is_sorted):
        return jax.ops.segment_sum(m, idx, num_segments=n, indices_are_sorted=is_sorted)

    def pull_without_arctan(x, a, b):
        """The sphere's pair kernel with its one arctan2 per pair replaced by a division."""
        xa, xb = x[a], x[b]
        d, e = xb - xa, xb + xa
        dd = jnp.sum(d * d, -1, keepdims=True)
        ra, rb = jnp.sqrt(dd), jnp.sqrt(jnp.sum(e * e, -1, keepdims=True))
        f = ra / (0.5 * ra * rb + 1e-30)
        return seg(f * (d + 0.5 * dd * xa), a, True) + seg(f * (0.5 * dd * xb - d), b, False)

    def pull(x, t):
        return energy.pull(manifold, x, t, pairs=True)

    prefixes = {
        # The messages are scaled by a row of the carry, or XLA would hoist the sum out of the loop.
        "scatter": lambda x, p: x + 0.0 * (seg(p["m"] * x[:1], p["a"], True) + seg(p["m"] * x[1:2], p["b"], False)),
        "gathers": lambda x, p: x + 0.0 * (seg(x[p["b"]], p["a"], True) + seg(x[p["a"]], p["b"], False)),
        "pull": lambda x, p: x + 0.0 * pull(x, p["topo"]),
        "pull without arctan2": lambda x, p: x + 0.0 * pull_without_arctan(x, p["a"], p["b"]),
        "step": lambda x, p: manifold.exp(x, p["eta"] * p["topo"].inv_inertia[:, None] * pull(x, p["topo"])),
    }
    programs = {}
    for name, body in prefixes.items():

        @partial(jax.jit, static_argnums=2)
        def run(x, p, k, body=body):
            return jax.lax.scan(lambda c, _: (body(c, p), None), x, None, length=k)[0]

        run(x0, args, steps).block_until_ready()
        programs[name] = run
    # Round robin, best of several: the machine's noise hits every prefix alike.
    seconds = dict.fromkeys(prefixes, np.inf)
    for _ in range(max(2, opts.repeats + 2)):
        for name, run in programs.items():
            seconds[name] = min(seconds[name], _timed(lambda run=run: run(x0, args, steps).block_until_ready()) / steps)
    parts = {
        "scatter": seconds["scatter"],
        "gathers": max(seconds["gathers"] - seconds["scatter"], 0.0),
        "geometry": max(seconds["pull"] - seconds["gathers"], 0.0),
        "update": max(seconds["step"] - seconds["pull"], 0.0),
    }
    # Negative when the division fuses worse than the arctan2 it replaces: then nothing to win.
    transcendental = seconds["pull"] - seconds["pull without arctan2"]
    total = seconds["step"]
    log(
        f"  N={opts.goal_n:,}, {topo.half.shape[0]:,} pairs; ms per step of each prefix: "
        + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in seconds.items())
    )
    log("  shares of the step: " + ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items()))
    return {"n": opts.goal_n, "step_s": total, "parts_s": parts, "arctan2_s": transcendental, "prefix_s": seconds}


def ensembles(opts: BenchOptions, n: int, log: Callable[[str], None]) -> dict:
    """All seeds in one vmapped run against a Python loop of one-seed runs, through ``simulate``."""
    seeds = tuple(range(opts.ensemble_seeds))
    batched = scenario(n, opts, opts.ensemble_steps, seeds)
    singles = [scenario(n, opts, opts.ensemble_steps, (s,)) for s in seeds]
    simulate(batched)  # compile both programs before timing
    simulate(singles[0])
    t = time.perf_counter()
    ds = simulate(batched)
    t_vmap = time.perf_counter() - t
    t = time.perf_counter()
    looped = [simulate(s).state.values[0] for s in singles]
    t_loop = time.perf_counter() - t
    looped = np.stack(looped)
    diff = float(np.max(np.abs(ds.state.values - looped)))
    equal = bool(np.array_equal(ds.state.values, looped))
    log(
        f"  {len(seeds)} seeds x N={n:,} x {opts.ensemble_steps} steps: vmapped {t_vmap:.2f} s, loop {t_loop:.2f} s: "
        f"x{t_loop / t_vmap:.1f}, {'bitwise equal' if equal else f'largest difference {diff:.1e}'}"
    )
    return {
        "seeds": len(seeds),
        "n": n,
        "steps": opts.ensemble_steps,
        "vmapped_s": t_vmap,
        "loop_s": t_loop,
        "speedup": t_loop / t_vmap,
        "bitwise_equal": equal,
        "max_diff": diff,
    }


def _memory_child(n: int, m: int, dim: int, steps: int) -> None:
    """Run in a fresh process so that its peak (VmHWM) is the engine's own."""
    opts = replace(BenchOptions(), m=m, dim=dim)
    t = time.perf_counter()
    ds = simulate(scenario(n, opts, steps))
    elapsed = time.perf_counter() - t
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({"peak_bytes": peak_kb * 1024, "seconds": elapsed, "edges": int(ds.sizes["edge"]) * 2}))


def memory(opts: BenchOptions, log: Callable[[str], None]) -> dict | None:
    """Peak resident memory of a whole ``simulate`` at ``memory_n`` agents, in a child process."""
    if not Path("/proc/self/status").exists():
        log("  no /proc: peak memory not measured on this platform")
        return None
    args = f"{opts.memory_n}, {opts.m}, {opts.dim}, {opts.memory_steps}"
    code = f"from hivemind.bench.harness import _memory_child; _memory_child({args})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        log(f"  memory run failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(n=opts.memory_n, steps=opts.memory_steps, limit_bytes=opts.memory_limit_gb * 1e9)
    log(
        f"  N={opts.memory_n:,}, {result['edges']:,} directed edges, d={opts.dim}, {opts.memory_steps} steps: "
        f"peak {result['peak_bytes'] / 1e9:.2f} GB (limit {opts.memory_limit_gb:g} GB), {result['seconds']:.1f} s"
    )
    return result


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "devices": [str(d) for d in jax.devices()],
    }


def goals(result: dict) -> list[dict]:
    """The issue's goals, each with its measured value and whether it is met."""
    rows = {r["n"]: r for r in result["sizes"]}
    out = []
    goal = rows.get(result["options"]["goal_n"])
    if goal is not None:
        out.append(_goal("engine vs numpy (np.add.at)", goal["numpy_add_at_step_s"] / goal["engine_step_s"], 15, "x"))
        out.append(_goal("engine vs numpy (scipy sparse)", goal["numpy_sparse_step_s"] / goal["engine_step_s"], 8, "x"))
    bw = result["bandwidth_bytes_per_s"]
    for n, target in FUSED_GOALS.items():  # issue 37's goals, where the size was run
        row = rows.get(n)
        if row is not None and row.get("engine_kernel") == "fused":
            speedup = row["numpy_add_at_step_s"] / row["engine_step_s"]
            out.append(_goal(f"fused kernel vs numpy (np.add.at), N={n:,}", speedup, target, "x"))
            if n == result["options"]["goal_n"]:
                share = row["step_bytes"] / row["engine_step_s"] / bw
                out.append(_goal(f"fused kernel, share of copy bandwidth, N={n:,}", share, 0.2, ""))
    for k in result.get("kernels") or []:
        out.append(_goal(f"pair kernel vs message kernel, {k['manifold']}", k["speedup"], 1, "x"))
    if goal is not None:  # once, not once per manifold of the kernel race
        loop = [r for r in result["sizes"] if "loop_step_s" in r]
        if loop:
            biggest = loop[-1]  # linear in edges: scale its per-edge cost to the goal's edges
            projected = biggest["loop_step_s"] * goal["edges"] / biggest["edges"]
            out.append(_goal("engine vs per-agent loop (extrapolated)", projected / goal["engine_step_s"], 1000, "x"))
        state_bytes = (result["options"]["dim"] + 1) * 4
        rate = goal["edges"] / goal["engine_step_s"]
        out.append(_goal("edge updates/s x state bytes / copy bandwidth", rate * state_bytes / bw, 0.2, ""))
    biggest = max(result["sizes"], key=lambda r: r["n"])
    out.append(
        {
            "goal": f"time per step at N={biggest['n']:,} (reported)",
            "value": biggest["engine_step_s"],
            "target": "s",
            "met": True,
        }
    )
    sweep = result.get("edge_sweep")
    if sweep:
        out.append(
            {
                "goal": "time per step ~ edges^1",
                "value": sweep["slope"],
                "target": "0.8..1.2",
                "met": 0.8 <= sweep["slope"] <= 1.2,
            }
        )
    mem = result.get("memory")
    if mem:
        out.append(
            {
                "goal": f"peak memory at N={mem['n']:,}",
                "value": mem["peak_bytes"] / 1e9,
                "target": f"<= {mem['limit_bytes'] / 1e9:g} GB",
                "met": mem["peak_bytes"] <= mem["limit_bytes"],
            }
        )
    for ens in result.get("ensembles") or []:
        out.append(_goal(f"{ens['seeds']} seeds vmapped vs loop, N={ens['n']:,}", ens["speedup"], 5, "x"))
        # Batches of different widths compile to different fusions: equal to float32 ulps, often bitwise.
        out.append(
            {
                "goal": f"{ens['seeds']} seeds vmapped = looped{' (bitwise)' if ens['bitwise_equal'] else ''}, N={ens['n']:,}",
                "value": ens["max_diff"],
                "target": "< 1e-6",
                "met": ens["max_diff"] < 1e-6,
            }
        )
    return out


def _goal(name: str, value: float, target: float, unit: str) -> dict:
    return {"goal": name, "value": value, "target": f">= {target:g}{unit}", "met": value >= target}


def run_bench(opts: BenchOptions = BenchOptions(), log: Callable[[str], None] = print) -> dict:
    """Run every comparison; return the results (``goals`` and ``agree`` included)."""
    result: dict = {"machine": machine(), "options": asdict(opts)}
    log(f"hivemind bench on {result['machine']['cpu_count']} CPU cores, {', '.join(result['machine']['devices'])}")
    result["bandwidth_bytes_per_s"] = memory_bandwidth()
    log(f"memory copy bandwidth: {result['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s (read + write)")
    log(f"time per step (sphere S^{opts.dim}, gradient rule, scale-free graphs) and ratios (alternative / hivemind):")
    result["sizes"] = compare_sizes(opts, log)
    log(f"pair kernel against message kernel, N={opts.goal_n:,}, {opts.steps} steps:")
    result["kernels"] = kernel_race(opts, log)
    log("where a step's time goes (pair kernel, sphere):")
    result["profile"] = step_profile(opts, log)
    log("cost against edges:")
    result["edge_sweep"] = edge_sweep(opts, log)
    log("geometry kernel, batched sphere exp and log:")
    goal_row = next((r for r in result["sizes"] if r["n"] == opts.goal_n), result["sizes"][-1])
    result["kernel"] = geometry_kernel(opts, goal_row["edges"], log)
    log("ensembles:")
    result["ensembles"] = [ensembles(opts, n, log) for n in opts.ensemble_ns]
    log("memory:")
    result["memory"] = memory(opts, log)
    diffs = [v for r in result["sizes"] for k, v in r.items() if k.endswith("_max_diff")]
    if result["kernel"]:
        diffs.append(result["kernel"]["max_diff"])
    result["max_disagreement"] = max(diffs)
    result["agree"] = result["max_disagreement"] < AGREE_TOL
    result["goals"] = goals(result)
    return result


def report(result: dict) -> str:
    """The goals table, as printed at the end of ``hivemind bench``."""
    lines = ["", f"{'goal':<48} {'measured':>10}  {'target':<10} met"]
    for g in result["goals"]:
        lines.append(f"{g['goal']:<48} {g['value']:>10.3g}  {g['target']:<10} {'yes' if g['met'] else 'NO'}")
    verdict = "agree" if result["agree"] else "DISAGREE"
    lines.append(
        f"implementations {verdict}: largest state difference {result['max_disagreement']:.2e} (tolerance {AGREE_TOL:g})"
    )
    return "\n".join(lines)


def save(result: dict, out: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """``bench.json`` and the log-log figure ``bench.<fmt>`` in ``out``."""
    from hivemind.io.results import save_json
    from hivemind.plot import bench_figure, save_figure

    out.mkdir(parents=True, exist_ok=True)
    save_json(result, out / "bench.json")
    paths = [out / "bench.json"]
    paths += save_figure(bench_figure(result), out / "bench", formats)
    return paths
