"""Do the 90 % intervals of ``hivemind fit`` (many discussions) hold the truth 90 % of the time?

Datasets are made with known values by simulators written here (numpy), at values read from the
committed fits, not typed: in R^1, Mixtral's ``peer+decay`` fit from figures/llm_discussions.json
(starting from that dataset's own round-0 opinions); on the sphere, the ``fj`` couplings fitted
to the 32-agent live runs at T = 0.8 (the mean over five seeds, figures/archive/fbf9582/live_forecast.json), in
20 discussions of 8 agents around one anchor in 384 dimensions. Each dataset is fitted with the
true model and its cluster-robust intervals read; the coverage gets a Wilson 90 % interval.

Writes figures/fit_calibration.json and prints ``table(doc)``, which analysis/README.md quotes.

    .venv/bin/python analysis/fit_calibration.py [DATASETS]      (default 100; about 5 minutes)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from hivemind.theory.fitting import estimate, make_panel, parse

ROOT = Path(__file__).resolve().parents[1]
DATA = "dataset:brockers2025_mixtral"
JSON = ROOT / "figures" / "fit_calibration.json"
Z90 = 1.6448536269514722


def wilson(k: int, n: int, z: float = Z90) -> list[float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def r1_truth() -> dict:
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    p = doc["datasets"]["mixtral_8x7b"]["models"]["peer+decay"]["params"]
    return {"peer_coupling": p["peer_coupling"], "coupling_decay": p["coupling_decay"], "noise": p["noise"]}


def r1_start() -> np.ndarray:
    """Mixtral's round-0 opinions, (pairs, 2)."""
    from hivemind import datasets

    d = datasets.load(DATA)
    first = d[d["round"] == 0].pivot(index="conversation", columns="agent", values="opinion")
    return first.to_numpy(np.float64)


def r1_dataset(truth: dict, x0: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = x0.shape[0]
    x = x0.reshape(-1)
    partner = np.arange(2 * c) ^ 1
    ys = [x]
    for t in range(5):
        eta = truth["peer_coupling"] * math.exp(-truth["coupling_decay"] * t)
        x = x + eta * (x[partner] - x) + rng.normal(0, truth["noise"], x.shape)
        ys.append(x)
    a, b = np.arange(0, 2 * c, 2), np.arange(1, 2 * c, 2)
    return np.stack(ys)[..., None], np.repeat(np.arange(c), 2), np.concatenate([a, b]), np.concatenate([b, a])


def sphere_truth() -> dict:
    doc = json.loads((ROOT / "figures" / "archive" / "fbf9582" / "live_forecast.json").read_text())
    seeds = [v["models"]["fj"]["params"] for k, v in doc["runs"].items() if k.startswith("seed_")]
    keys = ("peer_coupling", "anchor_coupling", "stubbornness", "noise")
    return {k: float(np.mean([s[k] for s in seeds])) for k in keys}


def _log(x, y):
    c = np.clip(np.sum(x * y, -1, keepdims=True), -1, 1)
    u = y - c * x
    s = np.linalg.norm(u, axis=-1, keepdims=True)
    return np.arccos(c) * u / np.maximum(s, 1e-300)


def _exp(x, v):
    r = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.cos(r) * x + np.sinc(r / np.pi) * v


def sphere_dataset(truth: dict, rng, c: int = 20, size: int = 8, d: int = 384, rounds: int = 10):
    n = c * size
    conv = np.repeat(np.arange(c), size)
    src, dst = np.nonzero((conv[:, None] == conv[None, :]) & ~np.eye(n, dtype=bool))
    anchor = np.eye(d)[0]
    x = rng.normal(0, 1, (n, d)) + 3 * anchor
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    first = x.copy()
    ys = [x]
    for _ in range(rounds):
        pull = np.zeros_like(x)
        np.add.at(pull, dst, _log(x[dst], x[src]))
        v = (
            truth["peer_coupling"] * pull / (size - 1)
            + truth["anchor_coupling"] * _log(x, anchor)
            + truth["stubbornness"] * _log(x, first)
        )
        x = _exp(x, v)
        xi = rng.normal(0, truth["noise"], x.shape)
        x = _exp(x, xi - np.sum(xi * x, -1, keepdims=True) * x)
        ys.append(x)
    return np.stack(ys), conv, src, dst, anchor


def study(name: str, truth: dict, make, model: str, datasets: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    m = parse(model)
    covered = {k: 0 for k in truth if k != "noise"}
    estimates = {k: [] for k in truth}
    for i in range(datasets):
        panel = make(rng)
        w = panel.transitions()
        est = estimate.fit(m, panel, w)
        ivals = estimate.intervals(m, panel, est, w).intervals
        for k in covered:
            lo, hi = ivals[k]
            covered[k] += lo <= truth[k] <= hi
        for k in truth:
            estimates[k].append(float(est.params[k]) if k != "noise" else math.sqrt(est.mse / panel.dof))
        print(f"  {name} {i + 1}/{datasets}", end="\r", flush=True)
    print()
    return {
        "model": model,
        "truth": truth,
        "datasets": datasets,
        "coverage": {k: v / datasets for k, v in covered.items()},
        "wilson_90": {k: wilson(v, datasets) for k, v in covered.items()},
        "estimates": {k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))} for k, v in estimates.items()},
    }


def table(doc: dict) -> str:
    lines = [
        "| space | model | truth from | parameter | truth | mean estimate (sd) | 90 % interval coverage [Wilson 90 %] |",
        "|---|---|---|---|---|---|---|",
    ]
    for space, s in doc["studies"].items():
        for k, cov in s["coverage"].items():
            e = s["estimates"][k]
            lo, hi = s["wilson_90"][k]
            lines.append(
                f"| {space} | `{s['model']}` | {s['source']} | {k} | {s['truth'][k]:.4g} | {e['mean']:.4g} ({e['sd']:.2g}) | "
                f"{cov:.2f} [{lo:.2f}, {hi:.2f}] |"
            )
    return "\n".join(lines) + f"\n\n{doc['datasets']} datasets per space.\n"


def main(datasets: int = 100) -> None:
    x0 = r1_start()
    t1 = r1_truth()

    def r1(rng):
        y, conv, src, dst = r1_dataset(t1, x0, rng)
        return make_panel(y, np.ones(y.shape[:2], bool), conv, src, dst, space="euclidean")

    t2 = sphere_truth()

    def sphere(rng):
        y, conv, src, dst, anchor = sphere_dataset(t2, rng)
        return make_panel(y, np.ones(y.shape[:2], bool), conv, src, dst, space="sphere", anchor=anchor)

    studies = {
        "R^1": {**study("R^1", t1, r1, "peer+decay", datasets, 1), "source": "Mixtral `peer+decay` (llm_discussions.json)"},
        "sphere": {**study("sphere", t2, sphere, "fj", datasets, 2), "source": "live runs, T = 0.8, `fj` (live_forecast.json)"},
    }
    doc = {"datasets": datasets, "studies": studies}
    JSON.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
