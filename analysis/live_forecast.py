"""The forecast models on the 32-agent conversations: one round ahead, per agent, against the baselines.

Reads the runs of ``live_population.py`` (run it first) and fits the nested models of
``hivemind.theory.forecast`` (anchor; peer; fj: + stubbornness toward each agent's first
message; attractor: + a free point of the sphere) by the one-step loss on rounds 0-10,
scoring them one round ahead on rounds 10-20 against persistence, copy-the-neighbours,
the centroid and the anchor. The five seeds at T = 0.8 give the spread that matters: the
interval of a skill is the mean over seeds +- t(0.95, 4) x sd / sqrt(5), and the
leave-one-seed-out range of the mean says whether one run carries it.

Writes figures/live_forecast.json.

    .venv/bin/python analysis/live_forecast.py
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _common import ROOT, write_numbers
from scipy import stats

from hivemind import load_scenario
from hivemind.live.fit import peer_edges, peer_graph
from hivemind.theory.forecast import MODELS, fit_all

SCENARIO = ROOT / "analysis" / "live32.toml"
POPULATION = ROOT / "runs" / "analysis_population"
RUNS = ["greedy", *(f"seed_{s}" for s in range(5)), "temperature_0.4", "temperature_1.2"]


def one(name: str, scenario) -> dict:
    ds = xr.open_dataset(POPULATION / name / "live.nc")
    y = ds.embedding.isel(decoding=0).values
    anchor = ds.anchor_embedding.values
    ds.close()
    src, dst = peer_edges(scenario)
    return fit_all(y, anchor, peer_graph(scenario), src, dst)


def main() -> None:
    scenario = load_scenario(SCENARIO)
    results = {name: one(name, scenario) for name in RUNS if (POPULATION / name / "live.nc").is_file()}
    for name, r in results.items():
        cells = []
        for m in MODELS:
            o = r["models"][m]["one_step"]
            cells.append(f"{m} {o['skill_vs_persistence']:+.3f}/{o['skill_vs_neighbours']:+.3f}")
        print(f"  {name}: skill vs persistence / vs neighbours: " + ", ".join(cells) + f"; best {r['best']}")
    seeds = [results[f"seed_{s}"] for s in range(5) if f"seed_{s}" in results]
    summary = {}
    for m in MODELS:
        for b in ("persistence", "neighbours", "centroid", "anchor"):
            v = np.array([s["models"][m]["one_step"][f"skill_vs_{b}"] for s in seeds])
            half = stats.t.ppf(0.95, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
            loo = [float(np.delete(v, k).mean()) for k in range(len(v))]
            summary[f"{m}_vs_{b}"] = {
                "mean": float(v.mean()),
                "interval_90": [float(v.mean() - half), float(v.mean() + half)],
                "leave_one_seed_out": [min(loo), max(loo)],
                "per_seed": v.tolist(),
            }
        s = summary[f"{m}_vs_persistence"]
        n = summary[f"{m}_vs_neighbours"]
        print(
            f"  T = 0.8, {len(seeds)} seeds, {m}: skill vs persistence {s['mean']:+.3f} "
            f"[{s['interval_90'][0]:+.3f}, {s['interval_90'][1]:+.3f}], vs neighbours {n['mean']:+.3f} "
            f"[{n['interval_90'][0]:+.3f}, {n['interval_90'][1]:+.3f}]"
        )
    write_numbers("live_forecast", {"runs": results, "seeds_t08": summary})


if __name__ == "__main__":
    main()
