"""Phase diagrams with ``hivemind sweep``: where collapse happens, how fast, and where it breaks.

1. Step size x anchor coupling on the quickstart (S^15, 200 agents): steps to reach a
   mean distance of 1e-3, with the grounded operator's stability boundary
   step_size x lambda_max = 2 and its predicted steps drawn over it.
2. Noise x its decay time for the stochastic rule (``paths_sphere.toml``, exponential
   decay): where the noisy path still ends at the anchor, the condition of the paper's
   path independence.
3. The Hegselmann–Krause bifurcation diagram: final opinions against epsilon on R^1
   (``hegselmann_krause.toml``), and the cluster count on S^2.

Writes figures/phase_diagram_{steps,noise,hk_line,hk_sphere}.png and figures/phase_diagram.json.

    .venv/bin/python analysis/phase_diagram.py
"""

from __future__ import annotations

import time

import numpy as np
from _common import FIGURES, HK_ON_SPHERE, SCENARIOS, write_numbers

from hivemind import load_scenario, sweep
from hivemind.plot import save_figure, sweep_figure


def _runs(counts: dict) -> str:
    """ "19 (0.02), 5 (0.06-0.09), ...": each run of equal median cluster counts over epsilon."""
    items = sorted((float(e), e, c) for e, c in counts.items())
    parts, start = [], 0
    for k in range(1, len(items) + 1):
        if k == len(items) or items[k][2] != items[start][2]:
            lo, hi = items[start][1], items[k - 1][1]
            parts.append(f"{items[start][2]:g} ({lo})" if lo == hi else f"{items[start][2]:g} ({lo}-{hi})")
            start = k
    return ", ".join(parts)


def hk_counts(doc: dict) -> str:
    """analysis/README.md's sentence on the HK bifurcation (readme_blocks.py renders it; tests check it)."""
    line = doc["hk_line"]
    one = sorted(float(e) for e, c in line.items() if c == 1)
    settled = min(e for e in one if all(c == 1 for f, c in line.items() if float(f) >= e)) if one else None
    first = f"first at {one[0]:g}" if one else "nowhere in the range"
    stays = "" if settled is None or settled == one[0] else f", and for every larger epsilon from {settled:g}"
    return f"on R^1 {_runs(line)}: one cluster {first}{stays}; on S^2 (rad) {_runs(doc['hk_sphere'])}.\n"


def main() -> None:
    numbers = {}
    t0 = time.perf_counter()
    quick = load_scenario(SCENARIOS / "quickstart.toml")
    grid = {
        "dynamics.step_size": [float(v) for v in np.geomspace(0.004, 0.08, 12)],
        "anchor.coupling": [0.25, 0.5, 1.0, 2.0, 4.0],
    }
    ds = sweep(quick, grid, seeds=2)
    save_figure(sweep_figure(ds), FIGURES / "phase_diagram_steps", ("png",))
    steps = ds.steps_to_tolerance.median("seed")
    stable = ds["dynamics.step_size"] * ds.lambda_max < 2
    reached = np.isfinite(steps.values)
    fastest = np.unravel_index(np.nanargmin(np.where(reached, steps.values, np.inf)), steps.shape)
    numbers["step_size_x_coupling"] = {
        "points": int(steps.size),
        "seeds": 2,
        "reached_1e-3": int(reached.sum()),
        "reached_but_predicted_unstable": int((reached & ~stable.values).sum()),
        "stable_but_not_reached_in_3000_steps": int((~reached & stable.values).sum()),
        "fastest": {
            "step_size": float(ds["dynamics.step_size"].values[fastest[0]]),
            "coupling": float(ds["anchor.coupling"].values[fastest[1]]),
            "steps": float(np.nanmin(steps.values)),
        },
        "lambda_max_by_coupling": {
            str(k): float(v)
            for k, v in zip(ds["anchor.coupling"].values, ds.lambda_max.isel({"dynamics.step_size": 0}).values, strict=True)
        },
    }
    print(f"step size x coupling: {numbers['step_size_x_coupling']}")

    paths = load_scenario(SCENARIOS / "paths_sphere.toml", ["dynamics.rule='stochastic'", "dynamics.steps=3000"])
    grid = {"dynamics.noise": [0.01, 0.03, 0.1, 0.3], "dynamics.noise_decay": [100.0, 300.0, 1000.0, 3000.0]}
    noisy = sweep(paths, grid, seeds=2)
    save_figure(sweep_figure(noisy), FIGURES / "phase_diagram_noise", ("png",))
    final = noisy.final_mean_distance.median("seed")
    numbers["noise_x_decay"] = {
        "final_mean_distance": {
            f"{n:g}": [float(v) for v in final.sel({"dynamics.noise": n}).values] for n in grid["dynamics.noise"]
        },
        "decays": grid["dynamics.noise_decay"],
    }
    print(f"noise x decay, final mean distance (rows: noise; columns: decay {grid['dynamics.noise_decay']}):")
    for n in grid["dynamics.noise"]:
        print(f"  noise {n:5.2f}: " + "  ".join(f"{v:9.3g}" for v in final.sel({"dynamics.noise": n}).values))

    hk = load_scenario(SCENARIOS / "hegselmann_krause.toml", ["dynamics.steps=100"])
    line = sweep(hk, {"dynamics.confidence": [float(v) for v in np.linspace(0.02, 0.32, 31)]}, seeds=3)
    save_figure(sweep_figure(line), FIGURES / "phase_diagram_hk_line", ("png",))
    hk_sphere = load_scenario(SCENARIOS / "hegselmann_krause.toml", [*HK_ON_SPHERE, "dynamics.steps=300"])
    sphere = sweep(hk_sphere, {"dynamics.confidence": [float(v) for v in np.linspace(0.2, 1.6, 15)]}, seeds=3)
    save_figure(sweep_figure(sphere), FIGURES / "phase_diagram_hk_sphere", ("png",))
    numbers["hk_line"] = {
        f"{e:.2f}": float(k) for e, k in zip(line["dynamics.confidence"].values, line.clusters.median("seed").values, strict=True)
    }
    numbers["hk_sphere"] = {
        f"{e:.2f}": float(k)
        for e, k in zip(sphere["dynamics.confidence"].values, sphere.clusters.median("seed").values, strict=True)
    }
    print(f"HK clusters on R^1 against epsilon: {numbers['hk_line']}")
    print(f"HK clusters on S^2 against epsilon: {numbers['hk_sphere']}")
    numbers["seconds"] = time.perf_counter() - t0
    write_numbers("phase_diagram", numbers)
    print(f"wrote figures/phase_diagram_*.png in {numbers['seconds']:.0f} s")


if __name__ == "__main__":
    main()
