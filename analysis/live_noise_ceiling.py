"""The noise ceiling: how much of a sampled round no model can predict, however good.

A message at T = 0.8 is one draw from the model's distribution given its prompt. Even the
best possible forecast, that distribution's mean, misses by the draw's own spread. This
script rebuilds, from the transcript of ``live_population.py``'s seed-0 run, the exact prompt
of every agent in two held-out rounds (each prompt's SHA-256 is checked against the one the
transcript recorded), decodes each ``REPLICATES`` more times with fresh seeds, and embeds
the texts with the run's embedder. With the message the run actually wrote that is
``REPLICATES + 1`` draws per prompt; their spread (the unbiased mean squared geodesic
distance to their mean, in the tangent space at the normalised mean) is the floor of any
forecast's one-step MSE. The best skill any model could reach against persistence is then
1 - floor / MSE_persistence on the same rounds, printed beside the fitted models' skill.

Writes figures/live_noise_ceiling.json.

    .venv/bin/python analysis/live_noise_ceiling.py [--compare]     (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
import xarray as xr
from _common import FIGURES, ROOT, write_numbers

from hivemind import load_scenario
from hivemind.live.backends import load_population
from hivemind.live.conversation import Room

SCENARIO = ROOT / "analysis" / "live32.toml"
RUN = ROOT / "runs" / "analysis_population" / "seed_0"
ROUNDS = (12, 18)  # held out: the fits use rounds 0-10
REPLICATES = 3
SEED = 2026  # the replicates' seeds, apart from the run's own


def _log(m, x):
    c = np.clip(x @ m, -1.0, 1.0)[:, None]
    u = x - c * m
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    return np.arccos(c) * u / np.where(norm > 1e-12, norm, 1.0)


def spread(draws: np.ndarray) -> float:
    """Unbiased mean squared distance of unit vectors (n, D) to their mean, in rad^2."""
    m = draws.mean(0)
    m /= np.linalg.norm(m)
    v = _log(m, draws)
    return float(np.sum((v - v.mean(0)) ** 2) / (len(draws) - 1))


def main() -> None:
    scenario = load_scenario(SCENARIO, ['live.decoding="stochastic"', "live.temperature=0.8", "live.seed=0"])
    spec = scenario.live
    records = [json.loads(line) for line in (RUN / "transcript.jsonl").open()]
    written = {(r["round"], r["index"]): r for r in records if r.get("kind") == "message"}
    pop, _ = load_population(scenario, say=lambda s: None)
    room = Room.of(scenario, pop)
    labels, agents, embed, scaffold = room.labels, room.agents, room.embed, room.scaffold
    backend = pop.generators[spec.model_of(0)]
    keys = jax.random.split(jax.random.key(SEED), len(ROUNDS) * REPLICATES)
    seeds = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (len(agents),), 0, 2**31 - 1))(keys))
    ds = xr.open_dataset(RUN / "live.nc")
    y = ds.embedding.isel(decoding=0).values
    ds.close()
    out = {"rounds": list(ROUNDS), "replicates": REPLICATES, "per_round": {}}
    floors, pers = [], []
    try:
        for n, rnd in enumerate(ROUNDS):
            latest = {}
            for r in range(rnd):
                for i in agents:
                    if written[(r, i)]["text"]:
                        latest[i] = (written[(r, i)]["text"], r)
            requests = []
            for k, i in enumerate(agents):
                rec, request = room.message(k, i, "stochastic", rnd, latest)
                if rec["prompt_sha256"] != written[(rnd, i)]["prompt_sha256"]:
                    raise SystemExit(f"round {rnd}, agent {labels[i]}: the rebuilt prompt differs from the transcript's")
                requests.append(request)
            draws = [[embed(latest_text) for latest_text in [written[(rnd, i)]["text"] or latest[i][0] for i in agents]]]
            for rep in range(REPLICATES):
                gens = backend.generate_batch(
                    requests[0].prefix,
                    [r.suffix for r in requests],
                    [r.sampling for r in requests],
                    seeds[n * REPLICATES + rep].tolist(),
                )
                texts = [scaffold.clean(g.text).text or latest[i][0] for g, i in zip(gens, agents, strict=True)]
                draws.append([embed(t) for t in texts])
            x = np.asarray(draws)  # (REPLICATES + 1, agents, D)
            floor = float(np.mean([spread(x[:, a]) for a in range(x.shape[1])]))
            persistence = float(np.mean(np.arccos(np.clip(np.sum(y[rnd] * y[rnd - 1], -1), -1.0, 1.0)) ** 2))
            floors.append(floor)
            pers.append(persistence)
            out["per_round"][str(rnd)] = {"floor_mse": floor, "persistence_mse": persistence}
            print(
                f"  round {rnd}: floor {floor:.4f} rad^2, persistence {persistence:.4f}, "
                f"ceiling skill {1 - floor / persistence:+.3f}"
            )
    finally:
        for b in {id(b): b for b in pop.generators.values()}.values():
            b.close()
    out["floor_mse"], out["persistence_mse"] = float(np.mean(floors)), float(np.mean(pers))
    out["ceiling_skill_vs_persistence"] = 1 - out["floor_mse"] / out["persistence_mse"]
    write_numbers("live_noise_ceiling", out)
    compare()


def compare() -> None:
    """The ceiling beside the fitted models' skill on the same rounds, from figures/archive/fbf9582/live_forecast.json
    (written by the forecast models retired with live_forecast.py; regenerable at fbf9582)."""
    out = json.loads((FIGURES / "live_noise_ceiling.json").read_text())
    forecast = FIGURES / "archive" / "fbf9582" / "live_forecast.json"
    res = json.loads(forecast.read_text())["runs"]["seed_0"] if forecast.is_file() else {}
    if "baselines_by_round" not in res:
        print("figures/archive/fbf9582/live_forecast.json (live_forecast.py, retired at fbf9582) holds the models' skill")
        return
    idx = [r - 1 - res["train_transitions"] for r in out["rounds"]]
    base = float(np.mean(np.asarray(res["baselines_by_round"]["persistence"])[idx]))
    out["models_on_these_rounds"] = {
        m: 1 - float(np.mean(np.asarray(e["one_step"]["mse_by_round"])[idx])) / base for m, e in res["models"].items()
    }
    print(
        f"seed 0, rounds {out['rounds']}: the best skill any model could reach against persistence is "
        f"{out['ceiling_skill_vs_persistence']:+.3f}; fitted: "
        + ", ".join(f"{m} {v:+.3f}" for m, v in out["models_on_these_rounds"].items())
    )
    write_numbers("live_noise_ceiling", out)


if __name__ == "__main__":
    compare() if "--compare" in sys.argv else main()
