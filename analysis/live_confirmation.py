"""Confirmation bias in the prompt: do the agents listen only to near views, and split?

Chuang et al. (2024) told LLM agents that they believe what agrees with their own view and
doubt what contradicts it, and saw the population fragment instead of agreeing. Hegselmann and
Krause's model says what that should look like if it works as bounded confidence: each agent
averages only over messages within a radius epsilon of its own, so the fitted epsilon of the
forecast's ``confidence`` model shrinks, and the final messages fall into more clusters.

Runs ``analysis/live32.toml`` (32 Gemma 3 270M agents on a wheel around the anchor, sampled at
T = 0.8, seed 0) for 12 rounds with the confirmation-bias prompt below, and compares it with
the first 12 rounds of the five T = 0.8 runs of ``live_population.py`` (same scenario and
prompt otherwise; run that first: nothing of it is regenerated). Each conversation is fitted on
rounds 0-6 and scored one round ahead on rounds 6-12 (``hivemind.theory.forecast.fit_all``).
Clusters: connected components of the 32 final messages, two messages joined when their
MiniLM embeddings are within ``CLUSTER_RAD``; the Vendi score is the effective number of
distinct messages.

Writes figures/live_confirmation.json.

    .venv/bin/python analysis/live_confirmation.py          (about 15 minutes on 2 cores)
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from _common import ROOT, write_numbers
from scipy.sparse.csgraph import connected_components

from hivemind import load_scenario
from hivemind.live.fit import peer_edges, peer_graph
from hivemind.live.prompts import DEFAULT_PROMPT
from hivemind.live.run import run_live
from hivemind.theory.forecast import fit_all

SCENARIO = ROOT / "analysis" / "live32.toml"
POPULATION = ROOT / "runs" / "analysis_population"
OUT = ROOT / "runs" / "analysis_confirmation"
ROUNDS, TRAIN = 12, 6
RESAMPLES = 100
CLUSTER_RAD = (0.5, 0.7)
BIAS = (
    "Like everyone, {agent} believes messages that agree with {agent}'s own view and dismisses messages that disagree with it.\n"
)
# The default prompt with the bias stated just before the neighbours' messages.
PROMPT = DEFAULT_PROMPT.replace("{neighbours}", BIAS + "{neighbours}")


def clusters(x: np.ndarray, rad: float) -> int:
    d = np.arccos(np.clip(x @ x.T, -1.0, 1.0))
    return int(connected_components(d <= rad, directed=False)[0])


def measure(path, scenario, label: str) -> dict:
    ds = xr.open_dataset(path / "live.nc")
    y = ds.embedding.isel(decoding=0).values[: ROUNDS + 1]
    anchor = ds.anchor_embedding.values
    vendi = ds.round_vendi_score.isel(decoding=0).values[: ROUNDS + 1]
    ds.close()
    src, dst = peer_edges(scenario)
    r = fit_all(y, anchor, peer_graph(scenario), src, dst, train=TRAIN, resamples=RESAMPLES, seed=0)
    conf = r["models"]["confidence"]
    peer = r["models"]["peer"]
    out = {
        "confidence_eps": conf["params"]["confidence"],
        "confidence_eps_interval": conf["intervals"]["confidence"],
        "peer_coupling": peer["params"]["peer_coupling"],
        "confidence_skill_vs_peer": 1 - conf["one_step"]["mse"] / peer["one_step"]["mse"],
        "skill_vs_persistence": {m: r["models"][m]["one_step"]["skill_vs_persistence"] for m in r["models"]},
        "best": r["best"],
        "vendi": [float(vendi[0]), float(vendi[-1])],
        "clusters": {str(c): [clusters(y[0], c), clusters(y[-1], c)] for c in CLUSTER_RAD},
        "mean_pairwise_rad": [float(np.mean(np.arccos(np.clip(y[t] @ y[t].T, -1, 1)))) for t in (0, ROUNDS)],
    }
    lo, hi = out["confidence_eps_interval"]
    print(
        f"  {label}: eps {out['confidence_eps']:.2f} rad [{lo:.2f}, {hi:.2f}], eta {out['peer_coupling']:.3f}, "
        f"confidence vs peer {out['confidence_skill_vs_peer']:+.3f}, best {out['best']}, "
        f"Vendi {out['vendi'][0]:.1f} -> {out['vendi'][1]:.1f}, "
        + ", ".join(f"clusters within {c} rad {a} -> {b}" for c, (a, b) in out["clusters"].items())
    )
    return out


def main() -> None:
    over = ['live.decoding="stochastic"', "live.temperature=0.8", "live.seed=0", f"live.rounds={ROUNDS}"]
    biased = load_scenario(SCENARIO, [*over, f"live.prompt={json.dumps(PROMPT)}"])  # a JSON string is a TOML one
    run_live(biased, OUT, resume=(OUT / "transcript.jsonl").is_file(), say=lambda s: None, formats=("png",))
    print(f"live32, T = 0.8, rounds 0-{ROUNDS}, fitted on 0-{TRAIN}:")
    numbers = {"prompt": PROMPT, "rounds": ROUNDS, "train": TRAIN, "cluster_rad": CLUSTER_RAD}
    numbers["confirmation_seed_0"] = measure(OUT, biased, "confirmation bias, seed 0")
    plain = load_scenario(SCENARIO, over)
    numbers["plain"] = {s: measure(POPULATION / f"seed_{s}", plain, f"plain prompt, seed {s}") for s in range(5)}
    eps = np.array([p["confidence_eps"] for p in numbers["plain"].values()])
    numbers["plain_eps_range"] = [float(eps.min()), float(eps.max())]
    write_numbers("live_confirmation", numbers)


if __name__ == "__main__":
    main()
