"""The paper's GGUF benchmark, repeated: do language-model agents collapse onto the anchor?

Runs ``scenarios/live_quickstart.toml`` (8 Gemma 3 270M agents on a wheel around a fixed
anchor message) for 10 rounds: once with greedy decoding, which is deterministic, and
with stochastic decoding for 5 seeds, so that the paper's single stochastic numbers get
a spread; and all of it twice, decoding a round's agents in one batch (the default) and one
after another, because the two paths sum the same arithmetic in different orders and the
texts drift apart from there. For every run it reports the paper's table (hash collisions, mean compliance,
final Jaccard similarity to the anchor), the embedding distance to the anchor, and the
R^2 of the engine with a fitted step size. Writes figures/live_collapse.png and
figures/live_collapse.json; the runs themselves stay in runs/analysis_live/.

    .venv/bin/python analysis/live_collapse.py          (about 8 minutes on 2 cores)
"""

from __future__ import annotations

import numpy as np
from _common import FIGURES, ROOT, SCENARIOS, write_numbers
from matplotlib.figure import Figure

from hivemind import load_scenario
from hivemind.live.outputs import PAPER
from hivemind.live.run import run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure

ROUNDS = 10
SEEDS = range(5)


BATCH = {"batched": "true", "one_after_another": "false"}


def one(decoding: str, seed: int, batch: str) -> dict:
    over = [f"live.rounds={ROUNDS}", f'live.decoding="{decoding}"', f"live.seed={seed}", f"live.batch={BATCH[batch]}"]
    scenario = load_scenario(SCENARIOS / "live_quickstart.toml", over)
    out = ROOT / "runs" / "analysis_live" / f"{batch}_{decoding}_{seed}"
    if out.exists():
        for f in out.iterdir():
            f.unlink()
    result = run_live(scenario, out, say=lambda s: None, formats=("png",))
    row = result.summary["table"][0]
    ds = result.dataset.sel(decoding=decoding)
    # The run's fit (theory.fitting, as hivemind fit fits one conversation): rounds 0-5 fitted, 5-10 held out.
    fit = result.summary["fit"][decoding]
    pull, held = fit["anchor_pull"], fit["best_heldout"] or {}
    iv = pull["interval"] or [float("nan")] * 2
    print(
        f"  {batch}, {decoding} seed {seed}: collisions {row['hash_collisions']}, mean compliance {row['mean_compliance']:.3f}, "
        f"final Jaccard {row['final_jaccard_to_anchor']:.3f}, distance {row['initial_embedding_distance']:.3f} -> "
        f"{row['final_embedding_distance']:.3f}; chosen {fit['best']}, run from round 0 R^2 {row['theory_r2_mean']}, "
        f"kappa {pull['anchor_coupling']:.3f} [{iv[0]:.3f}, {iv[1]:.3f}], held-out skill vs persistence "
        f"{held.get('skill_vs_persistence')}"
    )
    return {
        "batch": batch,
        "decoding": decoding,
        "seed": seed,
        **{k: row[k] for k in ("hash_collisions", "mean_compliance", "final_jaccard_to_anchor", "final_distinct_outputs")},
        "distance": ds.distance_to_anchor.mean("agent").values.tolist(),
        "theory": ds.theory_distance.mean("agent").values.tolist(),
        "jaccard": ds.jaccard_to_anchor.mean("agent").values.tolist(),
        "compliance": ds.compliant.mean("agent").values.tolist(),
        "theory_model": fit["best"],
        "theory_r2_mean": row["theory_r2_mean"],
        "fit": {
            "best": fit["best"],
            "anchor_pull": pull,
            "best_heldout": fit["best_heldout"],
            "params": fit["models"][fit["best"]]["params"],
        },
    }


def table(runs: list[dict]) -> dict:
    """The paper's numbers for one decoding path: greedy, and the stochastic seeds' mean and sd."""
    greedy, stochastic = runs[0], runs[1:]

    def spread(key: str) -> tuple[float, float]:
        values = np.asarray([r[key] for r in stochastic], float)
        return float(values.mean()), float(values.std(ddof=1))

    keys = ("mean_compliance", "final_jaccard_to_anchor", "theory_r2_mean")
    return {
        "hash_collisions": int(sum(r["hash_collisions"] for r in runs)),
        "greedy": {k: greedy[k] for k in keys},
        "stochastic_mean_sd": {k: spread(k) for k in keys},
        "final_over_initial_distance": {
            "greedy": greedy["distance"][-1] / greedy["distance"][0],
            "stochastic": [r["distance"][-1] / r["distance"][0] for r in stochastic],
        },
    }


def main() -> None:
    print(
        f"live_quickstart for {ROUNDS} rounds: greedy once, stochastic with seeds {list(SEEDS)}; batched, then one after another"
    )
    by_path = {b: [one("greedy", 0, b)] + [one("stochastic", s, b) for s in SEEDS] for b in BATCH}
    greedy, stochastic = by_path["batched"][0], by_path["batched"][1:]
    rounds = np.arange(ROUNDS + 1)
    numbers = {"rounds": ROUNDS, "runs": [r for runs in by_path.values() for r in runs], "paper": PAPER}
    numbers |= {b: table(runs) for b, runs in by_path.items()}

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
            ax.plot(rounds, by_path["one_after_another"][0][key], "s:", color="0.45", label="greedy, one after another")
            if key == "distance":
                ax.plot(
                    rounds, greedy["theory"], "--", color=CATEGORY_COLORS[0], label=f"fitted {greedy['theory_model']}, greedy"
                )
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
        fig.suptitle("8 Gemma 3 270M agents around a fixed anchor, decoded in one batch per round: no collapse")
    paths = save_figure(fig, FIGURES / "live_collapse", ("png",))
    write_numbers("live_collapse", numbers)
    for b in BATCH:
        t = numbers[b]
        g, sd, ratio = t["greedy"], t["stochastic_mean_sd"], t["final_over_initial_distance"]
        print(f"{b}: hash collisions in all runs: {t['hash_collisions']} (paper: 0)")
        print(
            f"{b}: mean compliance: greedy {g['mean_compliance']:.3f}, stochastic {sd['mean_compliance'][0]:.3f} +- "
            f"{sd['mean_compliance'][1]:.3f} (paper: 0.50 and 0.531)"
        )
        print(
            f"{b}: final Jaccard to the anchor: greedy {g['final_jaccard_to_anchor']:.3f}, stochastic "
            f"{sd['final_jaccard_to_anchor'][0]:.3f} +- {sd['final_jaccard_to_anchor'][1]:.3f} (paper: 0.295 and 0.224)"
        )
        print(
            f"{b}: embedding distance, final / initial: greedy {ratio['greedy']:.2f}, stochastic "
            f"{min(ratio['stochastic']):.2f} to {max(ratio['stochastic']):.2f} (the theory: 0 in the limit)"
        )
    print(f"figure: {paths[0]}")


if __name__ == "__main__":
    main()
