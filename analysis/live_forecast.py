"""The forecast models on the 32-agent conversations: one round ahead, per agent, against the baselines.

Reads the runs of ``live_population.py`` (run it first) and fits every model of
``hivemind.theory.forecast`` (copy; anchor; peer; fj: + stubbornness toward each agent's first
message; attractor: + a free point of the sphere; confidence: peer with bounded confidence;
each with process and observation noise) by the one-step loss on rounds 0-10, scoring them
one round ahead on rounds 10-20 against persistence, copy-the-neighbours, the centroid and
the anchor, with parametric-bootstrap intervals for the parameters (by blocks of rounds for
the greedy run, whose decoder is deterministic).

The variation that matters:
- T = 0.8, five seeds: a skill's interval is the mean over seeds +- t(0.95, 4) sd / sqrt(5),
  and the leave-one-seed-out range of the mean says whether one run carries it; the same for
  every parameter, beside the median width of the within-run intervals.
- greedy, one run: a moving-block bootstrap (blocks of 3) over the ten held-out rounds of the
  skill's numerator and denominator.

With ``--second-embedder`` it copies the greedy and T = 0.8 runs to
runs/analysis_population_self/ and measures them again with Gemma's own hidden states
(``live.embedding_model = "self"``, no text regenerated), then fits those too.

Writes figures/live_forecast.json and figures/live_forecast.png (``--figure`` redraws the
figure from the json alone).

    .venv/bin/python analysis/live_forecast.py [--second-embedder]     (about 15 minutes on 2 cores)
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import xarray as xr
from _common import FIGURES, ROOT, write_numbers
from matplotlib.figure import Figure
from scipy import stats

from hivemind import load_scenario
from hivemind.live.fit import peer_edges, peer_graph
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure
from hivemind.theory.forecast import MODELS, fit_all

SCENARIO = ROOT / "analysis" / "live32.toml"
POPULATION = ROOT / "runs" / "analysis_population"
SELF = ROOT / "runs" / "analysis_population_self"
RUNS = ["greedy", *(f"seed_{s}" for s in range(5)), "temperature_0.4", "temperature_1.2"]
SEEDS = [f"seed_{s}" for s in range(5)]
RESAMPLES = 100
PARAMS = ("peer_coupling", "anchor_coupling", "stubbornness", "attractor_coupling", "confidence", "noise", "observation_noise")


def one(path, scenario) -> dict:
    ds = xr.open_dataset(path / "live.nc")
    y = ds.embedding.isel(decoding=0).values
    anchor = ds.anchor_embedding.values
    ds.close()
    src, dst = peer_edges(scenario)
    return fit_all(y, anchor, peer_graph(scenario), src, dst, resamples=RESAMPLES, seed=0)


def over_rounds(r: dict, model: str, baseline: str, resamples: int = 2000, block: int = 3, seed: int = 0) -> list[float]:
    """90 % interval of 1 - sum(MSE_model) / sum(MSE_baseline) over held-out rounds drawn in blocks."""
    a = np.asarray(r["models"][model]["one_step"]["mse_by_round"])
    b = np.asarray(r["baselines_by_round"][baseline])
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(a) - block + 1, size=(resamples, int(np.ceil(len(a) / block))))
    idx = (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, : len(a)]
    skill = 1 - a[idx].sum(1) / b[idx].sum(1)
    return [float(v) for v in np.quantile(skill, [0.05, 0.95])]


def across_seeds(values: np.ndarray) -> dict:
    half = stats.t.ppf(0.95, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    loo = [float(np.delete(values, k).mean()) for k in range(len(values))]
    return {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)),
        "interval_90": [float(values.mean() - half), float(values.mean() + half)],
        "leave_one_seed_out": [min(loo), max(loo)],
        "per_seed": values.tolist(),
    }


def summarise(results: dict, label: str) -> dict:
    out = {"greedy": {}, "seeds_t08": {}, "parameters_t08": {}}
    if "greedy" in results:
        g = results["greedy"]
        for m in g["models"]:
            o = g["models"][m]["one_step"]
            out["greedy"][m] = {
                b: {"skill": o[f"skill_vs_{b}"], "interval_over_rounds": over_rounds(g, m, b)}
                for b in ("persistence", "neighbours")
            }
        best = g["best"]
        p, n = out["greedy"][best]["persistence"], out["greedy"][best]["neighbours"]
        print(
            f"  {label} greedy, best {best}: skill vs persistence {p['skill']:+.3f} "
            f"[{p['interval_over_rounds'][0]:+.3f}, {p['interval_over_rounds'][1]:+.3f}], vs neighbours {n['skill']:+.3f} "
            f"[{n['interval_over_rounds'][0]:+.3f}, {n['interval_over_rounds'][1]:+.3f}] (blocks of held-out rounds)"
        )
    seeds = [results[s] for s in SEEDS if s in results]
    if len(seeds) < 2:
        return out
    for m in MODELS:
        for b in ("persistence", "neighbours", "centroid", "anchor"):
            out["seeds_t08"][f"{m}_vs_{b}"] = across_seeds(np.array([s["models"][m]["one_step"][f"skill_vs_{b}"] for s in seeds]))
        s, n = out["seeds_t08"][f"{m}_vs_persistence"], out["seeds_t08"][f"{m}_vs_neighbours"]
        print(
            f"  {label} T = 0.8, {len(seeds)} seeds, {m}: skill vs persistence {s['mean']:+.3f} "
            f"[{s['interval_90'][0]:+.3f}, {s['interval_90'][1]:+.3f}] (leave one seed out {s['leave_one_seed_out'][0]:+.3f}"
            f"..{s['leave_one_seed_out'][1]:+.3f}), vs neighbours {n['mean']:+.3f} "
            f"[{n['interval_90'][0]:+.3f}, {n['interval_90'][1]:+.3f}]"
        )
        params = {}
        for k in PARAMS:
            if k not in seeds[0]["models"][m]["params"]:
                continue
            v = np.array([s["models"][m]["params"][k] for s in seeds])
            params[k] = across_seeds(v)
            widths = [s["models"][m]["intervals"][k][1] - s["models"][m]["intervals"][k][0] for s in seeds]
            params[k]["median_within_run_width"] = float(np.median(widths))
            params[k]["across_seed_width_90"] = params[k]["interval_90"][1] - params[k]["interval_90"][0]
        out["parameters_t08"][m] = params
        print(
            "      "
            + ", ".join(
                f"{k} {p['mean']:.4f} (seed sd {p['sd']:.4f}, within-run 90% width {p['median_within_run_width']:.4f})"
                for k, p in params.items()
                if p["mean"] > 1e-4
            )
        )
    return out


def remeasure_with_self() -> None:
    from hivemind.live.run import run_live

    for name in ["greedy", *SEEDS]:
        src, dst = POPULATION / name, SELF / name
        if not (src / "transcript.jsonl").is_file():
            continue
        if not (dst / "live.nc").is_file():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
            decoding = "greedy" if name == "greedy" else "stochastic"
            over = [f'live.decoding="{decoding}"', 'live.embedding_model="self"']
            if name != "greedy":
                over += ["live.temperature=0.8", f"live.seed={name.split('_')[1]}"]
            run_live(load_scenario(SCENARIO, over), dst, resume=True, say=lambda s: None, formats=("png",))
        print(f"  {name}: measured again with Gemma's own states", file=sys.stderr)


def figure(numbers: dict) -> Figure:
    """Skill against persistence and against copy-the-neighbours per model: T = 0.8 as the mean over
    seeds with its 90 % interval, greedy with its interval over held-out rounds; one panel per embedder."""
    panels = [(k, label) for k, label in (("minilm", "MiniLM"), ("gemma_self", "Gemma's own states")) if k in numbers]
    with house_style():
        fig = Figure(figsize=(11, 3.8 * len(panels)), layout="constrained")
        axes = np.atleast_2d(fig.subplots(len(panels), 2))
        for row, (key, label) in enumerate(panels):
            summary = numbers[key]
            for col, base in enumerate(("persistence", "neighbours")):
                ax = axes[row, col]
                x = np.arange(len(MODELS))
                seeds = [summary["seeds_t08"].get(f"{m}_vs_{base}") for m in MODELS]
                mean = [s["mean"] if s else np.nan for s in seeds]
                err = np.array(
                    [[s["mean"] - s["interval_90"][0], s["interval_90"][1] - s["mean"]] if s else [0, 0] for s in seeds]
                ).T
                ax.bar(x - 0.2, mean, 0.4, yerr=err, color=CATEGORY_COLORS[0], label="T = 0.8, 5 seeds", capsize=3)
                greedy = [summary["greedy"].get(m, {}).get(base) for m in MODELS]
                g = [v["skill"] if v else np.nan for v in greedy]
                gerr = np.array(
                    [
                        [v["skill"] - v["interval_over_rounds"][0], v["interval_over_rounds"][1] - v["skill"]] if v else [0, 0]
                        for v in greedy
                    ]
                ).T
                ax.bar(x + 0.2, g, 0.4, yerr=gerr, color=CATEGORY_COLORS[1], label="greedy (blocks of rounds)", capsize=3)
                ax.axhline(0, color="0.4", lw=0.8)
                ax.set_xticks(x, MODELS)
                ax.set_ylabel(f"one-step skill vs {base}")
                ax.set_title(f"{label}: one round ahead against {base}")
                ax.legend(frameon=False, fontsize=8)
    return fig


def main() -> None:
    if "--figure" in sys.argv:  # redraw from the numbers already written
        numbers = json.loads((FIGURES / "live_forecast.json").read_text())
        save_figure(figure(numbers), FIGURES / "live_forecast", ("png",))
        return
    scenario = load_scenario(SCENARIO)
    results = {name: one(POPULATION / name, scenario) for name in RUNS if (POPULATION / name / "live.nc").is_file()}
    for name, r in results.items():
        cells = [f"{m} {r['models'][m]['one_step']['skill_vs_persistence']:+.3f}" for m in MODELS]
        print(f"  {name}: skill vs persistence: " + ", ".join(cells) + f"; best {r['best']}")
    numbers = {"runs": results, "minilm": summarise(results, "MiniLM")}
    if "--second-embedder" in sys.argv:
        remeasure_with_self()
        second = {name: one(SELF / name, scenario) for name in ["greedy", *SEEDS] if (SELF / name / "live.nc").is_file()}
        numbers["runs_gemma_self"] = second
        numbers["gemma_self"] = summarise(second, "Gemma's own states")
    write_numbers("live_forecast", numbers)
    save_figure(figure(numbers), FIGURES / "live_forecast", ("png",))


if __name__ == "__main__":
    main()
