"""``hivemind fit`` on many discussions against the simplest alternative, in one run.

1. 10 000 two-agent discussions of 6 rounds with scalar opinions (a decaying peer coupling and
   stance attractors, made here): the whole ``hivemind fit`` (9 models, 5 folds, a held-out
   half, intervals) against one plain ``scipy.optimize.least_squares`` fit of the same scalar
   model (peer+decay) on the same training discussions.
2. 625 discussions of 384-dimensional directions (random unit vectors moved along geodesics):
   the whole fit on the sphere.
3. 2 000 discussions of 32 agents on a sparse signed network (a ring where each agent hears two
   neighbours on each side, a quarter of the ties foes): the whole fit, ``edges[kind]`` among
   its models, against the simplest alternative for that one model, a linear least squares
   (``numpy.linalg.lstsq``) of the change on the two kinds' mean pulls.

Prints wall times and their ratio; writes ``fit_discussions.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.optimize

from hivemind.theory.fitting import Design, estimate, fit_panel, make_panel, parse


def scalar_pairs(c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    stance = rng.integers(0, 5, 2 * c)
    z = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    x = (stance - 2) * 0.6 + rng.normal(0, 0.3, 2 * c)
    partner = np.arange(2 * c) ^ 1
    ys = [x]
    for t in range(5):
        x = x + 0.4 * np.exp(-t / 2) * (x[partner] - x) + 0.3 * (z[stance] - x) + rng.normal(0, 0.15, x.shape)
        ys.append(x)
    return np.stack(ys)[..., None], stance


def pairs(c: int):
    a, b = np.arange(0, 2 * c, 2), np.arange(1, 2 * c, 2)
    return np.repeat(np.arange(c), 2), np.concatenate([a, b]), np.concatenate([b, a])


def least_squares_fit(y: np.ndarray, agents: np.ndarray) -> np.ndarray:
    """peer+decay by scipy: Delta x = eta exp(-t / T) (x_j - x), for the given agents."""
    x, dx = y[:-1, agents, 0], (y[1:] - y[:-1])[:, agents, 0]
    d = y[:-1, agents ^ 1, 0] - x
    t = np.arange(x.shape[0])[:, None]

    def residuals(p):
        return (dx - p[0] * np.exp(-p[1] * t) * d).ravel()

    return scipy.optimize.least_squares(residuals, [0.05, 0.1]).x


def sphere_groups(c: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 2 * c
    x = rng.normal(0, 1, (n, d))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    partner = np.arange(n) ^ 1
    ys = [x]
    for t in range(5):
        c_ = np.clip(np.sum(x * x[partner], -1, keepdims=True), -1, 1)
        u = x[partner] - c_ * x
        u = np.arccos(c_) * u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-300)
        v = 0.4 * np.exp(-t / 2) * u + rng.normal(0, 0.02, x.shape)
        v -= np.sum(v * x, -1, keepdims=True) * x
        r = np.linalg.norm(v, axis=-1, keepdims=True)
        x = np.cos(r) * x + np.sinc(r / np.pi) * v
        ys.append(x)
    return np.stack(ys)


FRIEND, FOE = 0.4, -0.1


def signed_ring(c: int, size: int = 32, seed: int = 0):
    """``c`` discussions of ``size`` agents on a ring lattice (each hears the two on either side),
    a quarter of the ties foes; opinions in R^1 moved by eta_kind (x_j - x) / degree plus noise."""
    rng = np.random.default_rng(seed)
    n = c * size
    base = np.arange(n)
    offset = (base // size) * size
    src = np.concatenate([offset + (base - offset + s) % size for s in (-2, -1, 1, 2)])
    dst = np.tile(base, 4)
    foe = rng.random(src.size) < 0.25
    eta = np.where(foe, FOE, FRIEND)
    x = rng.normal(0, 1, n)
    ys = [x]
    for _ in range(5):
        v = np.zeros(n)
        np.add.at(v, dst, eta * (x[src] - x[dst]))
        x = x + v / 4 + rng.normal(0, 0.2, n)
        ys.append(x)
    return np.stack(ys)[..., None], np.repeat(np.arange(c), size), src, dst, foe.astype(int)


def lstsq_edges(y: np.ndarray, src, dst, kind, agents: np.ndarray) -> np.ndarray:
    """edges[kind] by linear least squares: dx_i = sum_k eta_k m_ik, m_ik the kind-k pulls over the degree."""
    n = y.shape[1]
    degree = np.bincount(dst, minlength=n)
    cols = []
    for k in (0, 1):
        on = kind == k
        m = np.zeros((y.shape[0] - 1, n))
        for t in range(y.shape[0] - 1):
            np.add.at(m[t], dst[on], y[t, src[on], 0] - y[t, dst[on], 0])
        cols.append((m / np.maximum(degree, 1))[:, agents].ravel())
    dx = (y[1:] - y[:-1])[:, agents, 0].ravel()
    return np.linalg.lstsq(np.stack(cols, 1), dx, rcond=None)[0]


def _gap(values: dict) -> float:
    ours, theirs = np.asarray(values["hivemind"]), np.asarray(values["scipy"])
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


def sentence(results: dict) -> str:
    """The README's speed line, from ``fit_discussions.json``."""
    s, e = results["scalar"], results["embedded"]
    return (
        f"{s['discussions']} two-agent discussions of 6 rounds with scalar opinions, {s['models']} models, 5 folds, a "
        f"held-out half and every interval: {s['hivemind_fit_s']:.0f} s on 2 cores; one compiled fit of `peer+decay` "
        f"{s['hivemind_one_model_s']:.3f} s against {s['least_squares_one_model_s']:.3f} s for a plain "
        f"`scipy.optimize.least_squares` of the same model (fitted values within {_gap(s['peer+decay']):.1e} of "
        f"each other, relative). {e['discussions']} discussions "
        f"of {e['dims']}-dimensional directions on the sphere, {e['models']} models: {e['hivemind_fit_s']:.0f} s."
        + (
            f" {results['network']['discussions']} discussions of {results['network']['agents']} agents on a sparse signed "
            f"network, {results['network']['models']} models (one coupling per kind of tie among them): "
            f"{results['network']['hivemind_fit_s']:.0f} s.\n"
            if "network" in results
            else "\n"
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--discussions", type=int, default=10_000)
    ap.add_argument("--embedded", type=int, default=625)
    ap.add_argument("--network", type=int, default=2000, help="discussions of 32 agents on a sparse signed network")
    args = ap.parse_args()
    results = {}

    y, stance = scalar_pairs(args.discussions)
    conv, src, dst = pairs(args.discussions)
    valid = np.ones(y.shape[:2], bool)
    t0 = time.perf_counter()
    panel = make_panel(y, valid, conv, src, dst, space="euclidean", group=stance, groups=tuple("01234"), group_column="stance")
    comp = fit_panel(panel, design=Design())
    full = time.perf_counter() - t0
    agents = np.concatenate([2 * comp.training, 2 * comp.training + 1])
    t0 = time.perf_counter()
    eta, rate = least_squares_fit(y, agents)
    plain = time.perf_counter() - t0
    ours = comp.fits["peer+decay"].params
    # The same single fit through hivemind, compiled already (as every fold after the first is).
    model, weights = parse("peer+decay"), panel.transitions(comp.training)
    t0 = time.perf_counter()
    estimate.fit(model, panel, weights)
    single = time.perf_counter() - t0
    results["scalar"] = {
        "discussions": args.discussions,
        "hivemind_fit_s": full,
        "models": len(comp.fits),
        "least_squares_one_model_s": plain,
        "hivemind_one_model_s": single,
        "one_model_ratio": single / plain,
        "ratio": full / plain,
        "peer+decay": {"hivemind": [float(ours["peer_coupling"]), float(ours["coupling_decay"])], "scipy": [eta, rate]},
    }
    print(
        f"{args.discussions} scalar discussions: hivemind fit ({len(comp.fits)} models, 5 folds, held-out half, intervals) "
        f"{full:.1f} s; "
        f"scipy least_squares of peer+decay alone {plain:.2f} s ({full / plain:.0f}x, for {len(comp.fits)} models x 7 fits)"
    )
    print(f"  one fit of peer+decay, compiled: hivemind {single:.3f} s, scipy {plain:.3f} s ({single / plain:.2f}x)")
    e, r = float(ours["peer_coupling"]), float(ours["coupling_decay"])
    print(f"  peer+decay: hivemind eta {e:.5f} rate {r:.5f}; scipy {eta:.5f} {rate:.5f}")

    ys = sphere_groups(args.embedded, 384)
    conv, src, dst = pairs(args.embedded)
    t0 = time.perf_counter()
    panel = make_panel(ys, np.ones(ys.shape[:2], bool), conv, src, dst, space="sphere")
    comp = fit_panel(panel, design=Design())
    emb = time.perf_counter() - t0
    results["embedded"] = {"discussions": args.embedded, "dims": 384, "hivemind_fit_s": emb, "models": len(comp.fits)}
    print(f"{args.embedded} discussions of 384-dim directions: hivemind fit ({len(comp.fits)} models) {emb:.1f} s")

    y, conv, src, dst, kind = signed_ring(args.network)
    t0 = time.perf_counter()
    panel = make_panel(y, np.ones(y.shape[:2], bool), conv, src, dst, space="euclidean", kind=kind, kinds=("friend", "foe"))
    comp = fit_panel(panel, design=Design())
    net = time.perf_counter() - t0
    agents = np.flatnonzero(np.isin(conv, comp.training))
    t0 = time.perf_counter()
    plain = lstsq_edges(y, src, dst, kind, agents)
    plain_s = time.perf_counter() - t0
    ours = comp.fits["edges[kind]"]
    results["network"] = {
        "discussions": args.network,
        "agents": 32,
        "ties_per_agent": 4,
        "hivemind_fit_s": net,
        "models": len(comp.fits),
        "best": comp.best,
        "lstsq_one_model_s": plain_s,
        "truth": {"friend": FRIEND, "foe": FOE},
        "edge_coupling": {
            "hivemind": [float(v) for v in ours.params["edge_coupling"]],
            "lstsq": [float(v) for v in plain],
            "interval": ours.intervals["edge_coupling"],
        },
    }
    print(
        f"{args.network} discussions of 32 agents, signed ring: hivemind fit ({len(comp.fits)} models, best {comp.best}) "
        f"{net:.1f} s; lstsq of edges[kind] alone {plain_s:.2f} s; couplings hivemind "
        f"{[round(float(v), 4) for v in ours.params['edge_coupling']]}, lstsq {[round(float(v), 4) for v in plain]}, "
        f"truth [{FRIEND}, {FOE}]"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit_discussions.json").write_text(json.dumps(results, indent=2) + "\n")
    print(sentence(results), end="")


if __name__ == "__main__":
    main()
