"""32 language-model agents for 20 rounds, and the models of ``hivemind fit`` fitted to what they do.

Runs ``analysis/live32.toml`` (32 Gemma 3 270M agents on a wheel around a fixed anchor
message, decoded in one batch per round): greedy once, stochastic decoding at
temperature 0.8 with 5 seeds, and stochastic decoding at temperatures 0.4 and 1.2 (seed 0).
Every run is fitted as ``hivemind fit`` fits one conversation (``live.fit``: the first half of
the rounds fitted, the model chosen on later training rounds, the second half held out), with
the chosen model run from round 0 and its anchor coupling kappa's interval. Writes
figures/live_population.png and figures/live_population.json; the runs stay in
runs/analysis_population/ (delete it to start over: finished runs are resumed, not redone).

    .venv/bin/python analysis/live_population.py          (about 30 minutes on 2 cores)
"""

from __future__ import annotations

import time

import numpy as np
from _common import FIGURES, ROOT, write_numbers
from matplotlib.figure import Figure

from hivemind import load_scenario
from hivemind.live.run import run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure

SCENARIO = ROOT / "analysis" / "live32.toml"
OUT = ROOT / "runs" / "analysis_population"
SEEDS = 5
TEMPERATURES = (0.4, 1.2)


def summary_of(result) -> dict:
    row = result.summary["table"][0]
    fit = result.summary["fit"][row["decoding"]]
    ds = result.dataset.isel(decoding=0)
    best = fit["models"][fit["best"]]
    return {
        **{
            k: row[k]
            for k in ("decoding", "mean_compliance", "final_jaccard_to_anchor", "initial_vendi_score", "final_vendi_score")
        },
        **{
            k: row[k] for k in ("initial_embedding_distance", "final_embedding_distance", "final_distinct_2", "tokens_per_second")
        },
        "distance": ds.distance_to_anchor.mean("agent").values.tolist(),
        "malformed": ds.round_malformed_outputs.values.astype(int).tolist(),
        "embedder": result.summary["embedder"]["name"],
        "vendi": ds.round_vendi_score.values.tolist(),
        "fit": {
            "best": fit["best"],
            "params": best["params"],
            "intervals": best["intervals"],
            "best_heldout": fit["best_heldout"],
            "heldout_from_round": fit["design"]["heldout_from_round"],
            "anchor_pull": fit["anchor_pull"],
            "theory": ds.theory_distance.mean("agent").values.tolist(),
            "theory_r2_mean": fit["theory"]["r2_mean"],
        },
    }


def run(overrides: list[str], out) -> dict:
    scenario = load_scenario(SCENARIO, overrides)
    again = (out / "transcript.jsonl").is_file()
    return summary_of(run_live(scenario, out, resume=again, say=lambda s: None, formats=("png",)))


def describe(label: str, s: dict) -> None:
    fit = s["fit"]
    pull, held = fit["anchor_pull"], fit["best_heldout"] or {}
    lo, hi = pull["interval"] or (float("nan"), float("nan"))
    print(
        f"  {label}: compliance {s['mean_compliance']:.3f}, final Jaccard {s['final_jaccard_to_anchor']:.3f}, "
        f"Vendi {s['initial_vendi_score']:.2f} -> {s['final_vendi_score']:.2f}, "
        f"distance {s['initial_embedding_distance']:.3f} -> {s['final_embedding_distance']:.3f}; "
        f"chosen {fit['best']}, kappa {pull['anchor_coupling']:.4f} [{lo:.4f}, {hi:.4f}]; "
        f"held-out skill vs persistence {held.get('skill_vs_persistence')}"
    )


def main() -> None:
    t0 = time.perf_counter()
    print(f"{SCENARIO.name}: greedy, stochastic T=0.8 with {SEEDS} seeds, stochastic T in {TEMPERATURES}")
    greedy = run(['live.decoding="greedy"'], OUT / "greedy")
    describe("greedy", greedy)
    seeds = []
    for s in range(SEEDS):
        seeds.append(run(['live.decoding="stochastic"', "live.temperature=0.8", f"live.seed={s}"], OUT / f"seed_{s}"))
        describe(f"stochastic seed {s}", seeds[-1])
    temps = {0.8: seeds[0]}
    for t in TEMPERATURES:
        temps[t] = run(['live.decoding="stochastic"', f"live.temperature={t}"], OUT / f"temperature_{t}")
        describe(f"stochastic T={t}", temps[t])
    minutes = (time.perf_counter() - t0) / 60
    print(f"done in {minutes:.1f} minutes")

    numbers = {
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "greedy": greedy,
        "stochastic_seeds": seeds,
        "temperatures": {str(t): temps[t] for t in sorted(temps)},
        "minutes": minutes,
    }
    write_numbers("live_population", numbers)
    save_figure(figure(greedy, seeds, temps), FIGURES / "live_population", ("png",))


def figure(greedy: dict, seeds: list[dict], temps: dict) -> Figure:
    with house_style():
        fig = Figure(figsize=(15, 4.2), layout="constrained")
        ax_d, ax_v, ax_f, ax_t = fig.subplots(1, 4)
        rounds = np.arange(len(greedy["distance"]))
        g, s = CATEGORY_COLORS[0], CATEGORY_COLORS[1]
        ax_d.plot(rounds, greedy["distance"], "o-", color=g, label="greedy")
        d = np.array([x["distance"] for x in seeds])
        ax_d.plot(rounds, d.mean(0), "o-", color=s, label=f"stochastic, mean of {len(seeds)} seeds")
        ax_d.fill_between(rounds, d.min(0), d.max(0), color=s, alpha=0.2, lw=0)
        ax_d.set_title("mean embedding distance to the anchor")
        ax_d.set_ylabel("rad")
        ax_v.plot(rounds, greedy["vendi"], "o-", color=g, label="greedy")
        v = np.array([x["vendi"] for x in seeds])
        ax_v.plot(rounds, v.mean(0), "o-", color=s, label="stochastic")
        ax_v.fill_between(rounds, v.min(0), v.max(0), color=s, alpha=0.2, lw=0)
        ax_v.set_title("Vendi score (effective distinct messages)")
        # The chosen model against the observed curve, greedy, run on its own from round 0.
        ax_f.plot(rounds, greedy["distance"], "ko", label="observed (greedy)")
        r2 = greedy["fit"]["theory_r2_mean"]
        label = f"{greedy['fit']['best']}, run from round 0" + ("" if r2 is None else f", R² {r2:.2f}")
        ax_f.plot(rounds, greedy["fit"]["theory"], "-", color=CATEGORY_COLORS[2], label=label)
        ax_f.axvline(greedy["fit"]["heldout_from_round"], color="0.5", lw=0.8, ls=":")
        ax_f.set_title("greedy: the chosen model, rounds 0-10 fitted")
        ts = sorted(temps)
        kap = [temps[t]["fit"]["anchor_pull"]["anchor_coupling"] for t in ts]
        iv = [temps[t]["fit"]["anchor_pull"]["interval"] or [np.nan, np.nan] for t in ts]
        lo, hi = [v[0] for v in iv], [v[1] for v in iv]
        ax_t.errorbar(
            ts, kap, yerr=[np.subtract(kap, lo), np.subtract(hi, kap)], fmt="o-", color=s, capsize=3, label="kappa (chosen model)"
        )
        ax_t.plot(ts, [temps[t]["final_jaccard_to_anchor"] for t in ts], "s--", color=g, label="final Jaccard")
        ax_t.set_xlabel("temperature")
        ax_t.set_title("kappa (90% interval), final Jaccard")
        for ax in (ax_d, ax_v, ax_f):
            ax.set_xlabel("round")
        for ax in (ax_d, ax_v, ax_f, ax_t):
            ax.legend(fontsize="small")
        fig.suptitle("32 Gemma 3 270M agents around a fixed anchor, 20 rounds")
    return fig


def redraw() -> None:
    """The figure again from figures/live_population.json, without rerunning anything."""
    import json

    numbers = json.loads((FIGURES / "live_population.json").read_text())
    temps = {float(t): v for t, v in numbers["temperatures"].items()}
    save_figure(figure(numbers["greedy"], numbers["stochastic_seeds"], temps), FIGURES / "live_population", ("png",))


if __name__ == "__main__":
    import sys

    redraw() if sys.argv[1:] == ["--redraw"] else main()
