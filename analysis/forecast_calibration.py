"""Do the forecast fit's 90 % intervals hold the truth? A coverage study at the real data's noise level.

Conversations are made by a step of our own in numpy (the sphere's Exp and Log in closed
form, not the module's step): 32 agents on a ring around an anchor, 384 dimensions (MiniLM's),
20 rounds, with the couplings, process noise and observation noise that the ``fj`` model
fitted to the 32-agent conversations at T = 0.8 (about 0.74 rad of process noise per agent and
round, the live runs' level). Each of ``DATASETS`` conversations is fitted on rounds 0-10 and
its intervals drawn by ``hivemind.theory.forecast.bootstrap``, parametric (the default) and by
blocks of rounds; the share of conversations whose interval holds the true value is the
coverage, with a Wilson 90 % interval for that share.

Writes figures/forecast_calibration.json.

    .venv/bin/python analysis/forecast_calibration.py          (about 40 minutes on 2 cores)
    .venv/bin/python analysis/forecast_calibration.py 40 --parametric   (one method: its own json)
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _common import write_numbers

from hivemind.theory import forecast as fc
from hivemind.theory.dynamics_fit import peer_topology

DATASETS = 100
RESAMPLES = 100
N, D, ROUNDS, TRAIN = 32, 384, 20, 10
TRUTH = {"peer_coupling": 0.44, "anchor_coupling": 0.08, "stubbornness": 0.05, "noise": 0.038, "observation_noise": 0.012}


def _log(x, y):
    c = np.clip(np.sum(x * y, -1, keepdims=True), -1.0, 1.0)
    u = y - c * x
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    return np.where(norm > 1e-15, np.arccos(c) * u / np.where(norm > 1e-15, norm, 1.0), 0.0)


def exp(x, v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.cos(n) * x + np.where(n > 1e-15, np.sin(n) / np.where(n > 1e-15, n, 1.0), 1.0) * v


def _noisy(rng, x, s):
    xi = rng.normal(size=x.shape)
    return exp(x, s * (xi - np.sum(xi * x, -1, keepdims=True) * x))


def conversation(seed: int, truth: dict = TRUTH, n: int = N, d: int = D, rounds: int = ROUNDS):
    """Hidden states stepped with process noise, observed through observation noise; the
    stubbornness target is each agent's first observed message, as the model has it."""
    rng = np.random.default_rng(seed)
    src = np.concatenate([np.arange(n), (np.arange(n) + 1) % n])
    dst = np.concatenate([(np.arange(n) + 1) % n, np.arange(n)])
    anchor = np.eye(d)[0]
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    first = _noisy(rng, x, truth["observation_noise"])
    ys = [first]
    for _ in range(rounds):
        pull = np.zeros_like(x)
        np.add.at(pull, dst, _log(x[dst], x[src]))
        v = truth["peer_coupling"] * pull / 2 + truth["anchor_coupling"] * _log(x, anchor)
        x = _noisy(rng, exp(x, v + truth["stubbornness"] * _log(x, first)), truth["noise"])
        ys.append(_noisy(rng, x, truth["observation_noise"]))
    return np.stack(ys), anchor, src, dst


def wilson(k: int, n: int, z: float = 1.645) -> list[float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]


def summarise(rows: list[dict], methods: tuple[str, ...]) -> dict:
    """Coverage per method and parameter, with a Wilson interval, and the estimates' spread."""
    datasets = len(rows)
    out = {"truth": TRUTH, "datasets": datasets, "resamples": RESAMPLES, "shape": [ROUNDS + 1, N, D], "train": TRAIN}
    for method in methods:
        cover = {}
        for k, v in TRUTH.items():
            hits = sum(r[method][k][0] <= v <= r[method][k][1] for r in rows)
            width = float(np.median([r[method][k][1] - r[method][k][0] for r in rows]))
            cover[k] = {"coverage": hits / datasets, "wilson_90": wilson(hits, datasets), "median_width": width}
        out[method] = cover
        print(f"{method}: " + ", ".join(f"{k} {c['coverage']:.2f}" for k, c in cover.items()))
    est = {k: np.array([r["estimate"][k] for r in rows]) for k in TRUTH}
    out["estimates"] = {k: {"mean": float(v.mean()), "sd": float(v.std(ddof=1))} for k, v in est.items()}
    print("estimates: " + ", ".join(f"{k} {v.mean():.4f} (sd {v.std(ddof=1):.4f}, truth {TRUTH[k]})" for k, v in est.items()))
    out["rows"] = rows
    return out


def main(datasets: int = DATASETS, methods: tuple[str, ...] = ("parametric", "blocks")) -> None:
    t0 = time.perf_counter()
    rows = []
    for s in range(datasets):
        y, anchor, src, dst = conversation(s)
        topo = peer_topology(N, src, dst, directed=True)
        row = {"seed": s}
        for method in methods:
            best, iv = fc.bootstrap(y, anchor, topo, "fj", TRAIN, resamples=RESAMPLES, seed=s, method=method)
            row[method] = {k: iv[k] for k in TRUTH}
        row["estimate"] = {k: best.params[k] for k in TRUTH}
        rows.append(row)
        print(f"  {s + 1}/{datasets} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    name = "forecast_calibration" if len(methods) > 1 else f"forecast_calibration_{methods[0]}"
    write_numbers(name, summarise(rows, methods))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = [a[2:] for a in sys.argv[1:] if a.startswith("--")]  # e.g. --parametric
    if bad := [m for m in only if m not in ("parametric", "blocks")] or [a for a in args if not a.isdigit()]:
        print(f"forecast_calibration.py: expected [DATASETS] [--parametric] [--blocks], got {bad[0]!r}", file=sys.stderr)
        sys.exit(2)
    main(int(args[0]) if args else DATASETS, tuple(only) or ("parametric", "blocks"))
