"""One run over two processes against one process, on one machine: ``make bench-processes``.

The benchmark's consensus (``hivemind bench``'s scale-free S^16 scenario) at 10^6
agents, timed three ways in the same run, each in fresh processes:

- one process with both cores, no sharding (the baseline);
- one process with two XLA CPU devices and ``run.shard = "agents"``: the two-device
  program with its exchange done in memory, which isolates the partitioning's own cost;
- two processes pinned to one core each (``taskset``), ``run.shard = "agents"``,
  exchanging neighbour states over gloo on 127.0.0.1.

The communication's share of a step is (two processes - two devices) / two processes.
On one 2-core machine this measures correctness and overhead, not a speed-up: the
two processes share the cores the single process already uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

STEPS = 10


def _measure(n: int, steps: int, shard: str) -> dict:
    """Time ``steps`` steps of the bench scenario in this process (after its compilation); final states on process 0."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from hivemind.bench import BenchOptions, scenario
    from hivemind.engine import processes, sharding
    from hivemind.runner.simulate import TAG_DYNAMICS, advance, engine_inputs, initial_configuration, start

    sc = scenario(n, BenchOptions(), steps)
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, shard=shard))
    config, hyper, topology = engine_inputs(sc, jnp.float32)
    x0 = initial_configuration(sc, 0, jnp.float32)[None]
    keys = jax.random.fold_in(jax.random.key(0), TAG_DYNAMICS)[None]
    x0, keys, topology, layout = sharding.shard(shard, x0, keys, topology)
    times = []
    for _ in range(3):  # the first compiles
        carry, _ = start(config, hyper, topology, x0, keys)
        jax.block_until_ready(carry)
        t = time.perf_counter()
        carry, _ = advance(config, hyper, topology, carry, 1, steps)
        jax.block_until_ready(carry.states)
        times.append(time.perf_counter() - t)
    states = processes.to_host(carry.states)[:, : layout.agents]
    if processes.is_writer():
        np.save(os.environ["HIVEMIND_BENCH_STATES"], states)
    return {"step_s": min(times[1:]) / steps, "devices": jax.device_count(), "processes": jax.process_count()}


def _child(args) -> None:
    if args.coordinator:
        from hivemind.engine import processes

        processes.initialize(args.coordinator, 2, args.process_id, timeout_s=120)
    result = _measure(args.n, args.steps, args.shard)
    if args.process_id in (None, 0):
        print("RESULT " + json.dumps(result), flush=True)


def _result_of(stdout: str) -> dict | None:
    """The measurement a child printed as its last ``RESULT {json}`` line."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else None


def _run(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    result = _result_of(out.stdout)
    if out.returncode != 0 or result is None:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shard", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    import numpy as np

    from hivemind.io.results import save_json

    me = [sys.executable, __file__, "--child", "--n", str(args.n), "--steps", str(args.steps)]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"hivemind-bench-processes-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    pin = shutil.which("taskset")
    print(f"{args.n:,} agents, {args.steps} steps of the bench scenario (S^16, scale-free), on {os.cpu_count()} cores")

    env["HIVEMIND_BENCH_STATES"] = str(tmp / "single.npy")
    single = _run([*me, "--shard", "none"], env)
    print(f"  1 process, {single['devices']} device, both cores:          {single['step_s'] * 1e3:8.1f} ms/step")

    env_dev = env | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "HIVEMIND_BENCH_STATES": str(tmp / "dev.npy")}
    devices = _run([*me, "--shard", "agents"], env_dev)
    print(f"  1 process, 2 devices, agents split, in-memory exchange: {devices['step_s'] * 1e3:8.1f} ms/step")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env_proc = env | {"HIVEMIND_BENCH_STATES": str(tmp / "proc.npy")}
    procs = []
    for i in range(2):
        cmd = [*me, "--shard", "agents", "--coordinator", f"127.0.0.1:{port}", "--process-id", str(i)]
        if pin:
            cmd = [pin, "-c", str(i % (os.cpu_count() or 1)), *cmd]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_proc))
    outs = [p.communicate() for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"two-process run failed: {outs[0][1].strip().splitlines()[-1:]} {outs[1][1].strip().splitlines()[-1:]}")
    two = _result_of(outs[0][0])
    print(f"  2 processes, 1 core each{' (taskset)' if pin else ''}, agents split, gloo: {two['step_s'] * 1e3:8.1f} ms/step")

    ref = np.load(tmp / "single.npy")
    diff_dev = float(np.max(np.abs(np.load(tmp / "dev.npy") - ref)))
    diff_two = float(np.max(np.abs(np.load(tmp / "proc.npy") - ref)))
    shutil.rmtree(tmp, ignore_errors=True)
    comm = max(two["step_s"] - devices["step_s"], 0.0) / two["step_s"]
    result = {
        "n": args.n,
        "steps": args.steps,
        "one_process_step_s": single["step_s"],
        "two_devices_step_s": devices["step_s"],
        "two_processes_step_s": two["step_s"],
        "two_processes_vs_one": single["step_s"] / two["step_s"],
        "communication_share": comm,
        "max_diff_two_devices": diff_dev,
        "max_diff_two_processes": diff_two,
        "pinned": bool(pin),
    }
    print(
        f"two processes / one process: x{result['two_processes_vs_one']:.2f} speed; communication "
        f"{comm:.0%} of a two-process step; final states equal to {diff_two:.1e} (two devices: {diff_dev:.1e})"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(result, out / "processes.json")
    print(f"wrote {out / 'processes.json'}")


if __name__ == "__main__":
    main()
