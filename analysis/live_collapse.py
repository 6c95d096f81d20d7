"""The paper's GGUF benchmark, repeated: do language-model agents collapse onto the anchor?

Runs ``scenarios/live_quickstart.toml`` (8 Gemma 3 270M agents on a wheel around a fixed
anchor message) for 10 rounds: once with greedy decoding, which is deterministic, and
with stochastic decoding for 5 seeds, so that the paper's single stochastic numbers get
a spread. For every run it reports the paper's table (hash collisions, mean compliance,
final Jaccard similarity to the anchor), the embedding distance to the anchor, and the
R^2 of the engine with a fitted step size. Writes figures/live_collapse.png and
figures/live_collapse.json; the runs themselves stay in runs/analysis_live/.

    .venv/bin/python analysis/live_collapse.py          (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import numpy as np
from _common import FIGURES, ROOT, SCENARIOS, write_numbers
from matplotlib.figure import Figure

from hivemind import load_scenario
from hivemind.live.run import PAPER, run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure

ROUNDS = 10
SEEDS = range(5)


def one(decoding: str, seed: int) -> dict:
    scenario = load_scenario(
        SCENARIOS / "live_quickstart.toml", [f"live.rounds={ROUNDS}", f'live.decoding="{decoding}"', f"live.seed={seed}"]
    )
    out = ROOT / "runs" / "analysis_live" / f"{decoding}_{seed}"
    if out.exists():
        for f in out.iterdir():
            f.unlink()
    result = run_live(scenario, out, say=lambda s: None, formats=("png",))
    row = result.summary["table"][0]
    ds = result.dataset.sel(decoding=decoding)
    print(
        f"  {decoding} seed {seed}: collisions {row['hash_collisions']}, mean compliance {row['mean_compliance']:.3f}, "
        f"final Jaccard {row['final_jaccard_to_anchor']:.3f}, distance {row['initial_embedding_distance']:.3f} -> "
        f"{row['final_embedding_distance']:.3f}, theory R^2 {row['theory_r2_mean']:.2f}"
    )
    return {
        "decoding": decoding,
        "seed": seed,
        **{k: row[k] for k in ("hash_collisions", "mean_compliance", "final_jaccard_to_anchor", "final_distinct_outputs")},
        "distance": ds.distance_to_anchor.mean("agent").values.tolist(),
        "theory": ds.theory_distance.mean("agent").values.tolist(),
        "jaccard": ds.jaccard_to_anchor.mean("agent").values.tolist(),
        "compliance": ds.compliant.mean("agent").values.tolist(),
        "theory_step_size": row["theory_step_size"],
        "theory_r2_mean": row["theory_r2_mean"],
    }


def main() -> None:
    print(f"live_quickstart for {ROUNDS} rounds: greedy once, stochastic with seeds {list(SEEDS)}")
    runs = [one("greedy", 0)] + [one("stochastic", s) for s in SEEDS]
    greedy, stochastic = runs[0], runs[1:]
    rounds = np.arange(ROUNDS + 1)

    def spread(key: str) -> tuple[float, float]:
        values = np.asarray([r[key] for r in stochastic], float)
        return float(values.mean()), float(values.std(ddof=1))

    numbers = {
        "rounds": ROUNDS,
        "runs": runs,
        "hash_collisions": int(sum(r["hash_collisions"] for r in runs)),
        "greedy": {k: greedy[k] for k in ("mean_compliance", "final_jaccard_to_anchor", "theory_r2_mean")},
        "stochastic_mean_sd": {k: spread(k) for k in ("mean_compliance", "final_jaccard_to_anchor", "theory_r2_mean")},
        "final_over_initial_distance": {
            "greedy": greedy["distance"][-1] / greedy["distance"][0],
            "stochastic": [r["distance"][-1] / r["distance"][0] for r in stochastic],
        },
        "paper": PAPER,
    }

    with house_style():
        fig = Figure(figsize=(13, 4.2), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, key, title in zip(
            axes,
            ("distance", "jaccard", "compliance"),
            ("embedding distance to the anchor (rad)", "Jaccard similarity to the anchor's text", "compliance with the rule"),
            strict=True,
        ):
            for k, r in enumerate(stochastic):
                label = f"stochastic, {len(stochastic)} seeds" if k == 0 else None
                ax.plot(rounds, r[key], color=CATEGORY_COLORS[1], lw=1, alpha=0.6, label=label)
            ax.plot(rounds, greedy[key], "o-", color=CATEGORY_COLORS[0], label="greedy")
            if key == "distance":
                ax.plot(rounds, greedy["theory"], "--", color=CATEGORY_COLORS[0], label="theory fitted to greedy")
                ax.set_ylim(bottom=0)
            else:
                which = "final_jaccard_to_anchor" if key == "jaccard" else "mean_compliance"
                paper = [PAPER[d][which] for d in ("greedy", "stochastic")]
                for d, v, c in zip(("greedy", "stochastic"), paper, CATEGORY_COLORS[:2], strict=True):
                    ax.axhline(v, color=c, ls=":", lw=1.5, label=f"paper, {d}")
                ax.set_ylim(0, 1)
            ax.set_title(title)
            ax.set_xlabel("round")
            ax.legend(fontsize="small")
        fig.suptitle("8 Gemma 3 270M agents around a fixed anchor: no collapse")
    paths = save_figure(fig, FIGURES / "live_collapse", ("png",))
    write_numbers("live_collapse", numbers)
    g, s = numbers["greedy"], numbers["stochastic_mean_sd"]
    print(f"hash collisions in all runs: {numbers['hash_collisions']} (paper: 0)")
    print(
        f"mean compliance: greedy {g['mean_compliance']:.3f}, stochastic {s['mean_compliance'][0]:.3f} +- "
        f"{s['mean_compliance'][1]:.3f} (paper: 0.50 and 0.531)"
    )
    print(
        f"final Jaccard to the anchor: greedy {g['final_jaccard_to_anchor']:.3f}, stochastic "
        f"{s['final_jaccard_to_anchor'][0]:.3f} +- {s['final_jaccard_to_anchor'][1]:.3f} (paper: 0.295 and 0.224)"
    )
    ratio = numbers["final_over_initial_distance"]
    print(
        f"embedding distance, final / initial: greedy {ratio['greedy']:.2f}, stochastic "
        f"{min(ratio['stochastic']):.2f} to {max(ratio['stochastic']):.2f} (the theory: 0 in the limit)"
    )
    print(f"figure: {paths[0]}")


if __name__ == "__main__":
    main()
