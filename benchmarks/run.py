"""The speed-and-scale harness: ``python benchmarks/run.py [--quick]`` is ``hivemind bench``.

The implementation lives in ``hivemind/bench/harness.py`` (the harness) and
``hivemind/bench/baselines.py`` (the numpy, per-agent loop and geomstats references), so that
the installed package can run it too; results land in ``benchmarks/results/``.
"""

from __future__ import annotations

import sys

from hivemind.cli import main

WHERE = {"sphere": "on the sphere", "hyperbolic": "in hyperbolic space", "euclidean": "in R^n"}


def _power(n: int) -> str:
    return f"10^{len(str(n)) - 1}" if str(n).strip("0") == "1" else f"{n:,}"


def table(doc: dict) -> str:
    """The speed guide's table of ``hivemind bench`` (docs/guide/speed.md; tests check it against bench.json)."""
    lines = [
        "| N agents | kernel | hivemind ms/step | pure JAX ms/step | vs numpy `np.add.at` | vs numpy + scipy sparse "
        "| vs per-agent loop |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    biggest_loop = max((r for r in doc["sizes"] if "loop_step_s" in r), key=lambda r: r["n"], default=None)
    goal_n = doc["options"]["goal_n"]
    for r in doc["sizes"]:
        t = r["engine_step_s"]
        jax_ms = f"{r['jax_step_s'] * 1e3:.2f}" if "jax_step_s" in r else "(the same)"
        if "loop_step_s" in r:
            loop = f"{r['loop_step_s'] / t:.0f}x"
        elif r["n"] == goal_n and biggest_loop is not None:  # per-edge cost scaled to this size's edges
            loop = f"{biggest_loop['loop_step_s'] * r['edges'] / biggest_loop['edges'] / t:.0f}x (extrapolated)"
        else:
            loop = ""
        lines.append(
            f"| {_power(r['n'])} | {r.get('engine_kernel', 'jax')} | {t * 1e3:.2f} | {jax_ms} | "
            f"{r['numpy_add_at_step_s'] / t:.1f}x | {r['numpy_sparse_step_s'] / t:.1f}x | {loop} |"
        )
    return "\n".join(lines) + "\n"


def facts(doc: dict) -> str:
    """The speed guide's list under that table: agreement, the pure-JAX kernels' race, scaling, memory,
    the geometry kernel, ensembles, bandwidth and the goals (tests check it against bench.json)."""
    out = [f"- **Agreement**: every implementation ends within {doc['max_disagreement']:.1e} of the others (float32)."]
    race = {k["manifold"]: k for k in doc.get("kernels") or []}
    if race:
        out.append(
            "- **The pure-JAX kernels** (GPUs, several devices, gradients): computing each undirected pair's geometry "
            "once (`Manifold.log_pair`) is "
            + " and ".join(f"**{k['speedup']:.2f}x** the per-message kernel {WHERE.get(m, m)}" for m, k in race.items())
            + f" at N = {_power(doc['options']['goal_n'])}."
        )
    sweep = doc["edge_sweep"]
    out.append(
        f"- **Linear in edges**: time per step grows as edges^{sweep['slope']:.2f} at N = {_power(sweep['n'])} "
        f"from {sweep['points'][0]['edges']:,} to {sweep['points'][-1]['edges']:,} edges."
    )
    mem = doc.get("memory")
    if mem:
        out.append(
            f"- **Memory**: {_power(mem['n'])} agents and {mem['edges']:,} messages run through `simulate` with a peak "
            f"of **{mem['peak_bytes'] / 1e9:.1f} GB** resident (limit {mem['limit_bytes'] / 1e9:g} GB), "
            f"{mem['seconds']:.1f} s for {mem['steps']} steps."
        )
    if doc.get("kernel"):
        k = doc["kernel"]
        out.append(
            f"- **Geometry kernel**: batched sphere log-then-exp on {k['pairs']:,} pairs, "
            f"{k['geomstats_s'] / k['hivemind_s']:.1f}x geomstats' numpy backend."
        )
    for e in doc.get("ensembles") or []:
        same = "bitwise" if e["bitwise_equal"] else f"to {e['max_diff']:.1e}"
        out.append(
            f"- **Ensembles**: {e['seeds']} seeds of N = {_power(e['n'])} in one vmapped run equal the looped runs "
            f"({same}) and are {e['speedup']:.1f}x faster than a Python loop of one-seed runs."
        )
    met = [g for g in doc["goals"] if g["met"]]
    out.append(
        f"- **Goals**: {len(met)} of {len(doc['goals'])} met; missed: "
        + (", ".join(f"{g['goal']} ({g['value']:.3g}, {g['target']})" for g in doc["goals"] if not g["met"]) or "none")
        + "."
    )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
