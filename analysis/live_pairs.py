"""The published studies' design with our small models: many two-agent discussions with assigned stances.

200 disjoint pairs (``[graph] kind = "groups"``), no anchor, the topic and statement of the
published climate-change discussions (Brockers, Ehrlich & Priesemann 2025), each agent given
a stance drawn from -2..2, 5 turns after the opening (rounds 0..5, as in their data), greedy
decoding, and every agent probed after every message (``live.probe``, the form chosen per
model on the check set). Run for Gemma 3 270M and SmolLM2-135M. For each model:

- the probe's validity twice over: on the check set (paraphrase above rejection), and against
  the stances the agents were given (round 0: does the probe order the stances?);
- whether the discussions converge: the gap between the two probes and the distance between
  the two messages' embeddings within each discussion, per round, with intervals over discussions;
- ``hivemind fit`` of the probes and of the embedded texts over held-out discussions: the best
  model (chosen on the training discussions), its skill against persistence and copy-the-
  neighbour, the peer coupling, its time constant and the stance attractors, with intervals.

Writes figures/live_pairs.json and figures/live_pairs.png; the runs stay in runs/analysis_pairs/
(finished runs are resumed, not redone).

    .venv/bin/python analysis/live_pairs.py            (about 40 minutes on 2 cores)
    .venv/bin/python analysis/live_pairs.py --pairs 20 (a quick look)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hivemind import parse_scenario
from hivemind.live.conversation import geodesic
from hivemind.live.embedders import table_embedder
from hivemind.live.geometry import share_above
from hivemind.live.run import run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure
from hivemind.theory.fitting.data import EMBEDDINGS_CACHE, Options, fit_discussions

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
OUT = ROOT / "runs" / "analysis_pairs"
MODELS = ("gemma3", "smollm2")
TOPIC = "climate change"
STATEMENT = "Climate change is caused by humans and we must act now."
ROUNDS = 5
SEED = 0
FIT_MODELS = ("peer", "peer+decay", "fj", "attractor", "attractor[stance]", "attractor[stance]+decay")


def stances(pairs: int, seed: int) -> list[int]:
    """Two stances per pair, uniform on -2..2, from one seeded generator."""
    return np.random.default_rng(seed).integers(-2, 3, size=2 * pairs).tolist()


def scenario_text(model: str, pairs: int) -> str:
    return f"""
name = "pairs_{model}"
description = "{pairs} two-agent discussions of {TOPIC} with assigned stances, probed every round"
[graph]
kind = "groups"
size = 2
count = {pairs}
[live]
model = "{model}"
rounds = {ROUNDS}
decoding = "greedy"
max_tokens = 40
n_ctx = 512
topic = "{TOPIC}"
probe_statement = "{STATEMENT}"
stances = {stances(pairs, SEED)}
probe = true
seed = {SEED}
fit = true
"""


def convergence(table: pd.DataFrame, embeddings: np.ndarray | None, rng) -> dict:
    """Per round, the mean within-pair probe gap (and embedding distance) with intervals over discussions."""
    from _common import mean_interval  # the analysis folder's helper: on the path when run as a script

    wide = table.pivot_table(index=["conversation", "round"], columns="agent", values="opinion").sort_index()
    gap = (wide[0] - wide[1]).abs().unstack("round").to_numpy()  # (discussions, rounds)
    out = {
        "probe_gap": gap.mean(axis=0).tolist(),
        "probe_gap_interval": [mean_interval(gap[:, r], rng) for r in range(gap.shape[1])],
        "probe_spread": table.groupby("round")["opinion"].std().tolist(),
    }
    if embeddings is not None:
        d = embeddings  # (discussions, rounds)
        out |= {
            "embedding_distance": d.mean(axis=0).tolist(),
            "embedding_distance_interval": [mean_interval(d[:, r], rng) for r in range(d.shape[1])],
        }
    return out


def pair_distances(ds, conversations: np.ndarray) -> np.ndarray:
    """(discussions, rounds): the geodesic distance between the two agents' message embeddings."""
    e = ds.embedding.isel(decoding=0).values  # (round, agent, coord)
    order = np.argsort(conversations, kind="stable")
    a, b = e[:, order[0::2]], e[:, order[1::2]]
    return geodesic(a, b).T


def model_summary(doc: dict) -> dict:
    """What the study reports of one ``hivemind fit``: the choice, the skills and the mechanisms
    (attractor positions only on the probes' scale: in 384 dimensions they are no number to read)."""
    best = doc["models"][doc["best"]]
    keep = ("peer_coupling", "coupling_timescale", "coupling_decay", "attractor_coupling", "stubbornness")
    if doc["data"]["dims"] == 1:
        keep += ("attractor",)
    out = {
        "best": doc["best"],
        "selection": doc["design"]["selection"],
        "heldout": doc["best_heldout"],
        "params": {k: v for k, v in best["params"].items() if k in keep},
        "intervals": {k: v for k, v in best["intervals"].items() if k in keep},
        "models": {
            # Models are compared on training data: the held-out skill is the chosen one's alone.
            name: {
                "cv_skill": (m.get("cv") or {}).get("skill_vs_persistence"),
                "cv_interval": (m.get("cv") or {}).get("interval_vs_persistence"),
                "params": {k: v for k, v in m["params"].items() if k in keep},
                "intervals": {k: v for k, v in m["intervals"].items() if k in keep},
            }
            for name, m in doc["models"].items()
            if "refused" not in m
        },
    }
    return out


def study(model: str, pairs: int) -> dict:
    out = OUT / f"{model}_{pairs}"
    sc = parse_scenario(scenario_text(model, pairs), file=f"pairs_{model}.toml")
    again = (out / "transcript.jsonl").is_file()
    t0 = time.perf_counter()
    res = run_live(sc, out, resume=again, say=print, formats=("png",))
    seconds = time.perf_counter() - t0
    table = pd.read_csv(out / "discussions_greedy.csv")
    rng = np.random.default_rng(SEED)
    first = table[table["round"] == 0]
    validity = {
        "check_set": res.summary["probes"][model],
        # Round 0: the opening, written from the persona that states the stance.
        "stance_auc_positive_vs_negative": share_above(
            first.loc[first.stance > 0, "opinion"].to_numpy(), first.loc[first.stance < 0, "opinion"].to_numpy()
        ),
        "stance_correlation": float(np.corrcoef(first.stance, first.opinion)[0, 1]),
        "mean_probe_by_stance": first.groupby("stance")["opinion"].mean().to_dict(),
        "mean_mass": float(table.probe_mass.mean()) if "probe_mass" in table else res.summary["table"][0]["mean_probe_mass"],
    }
    conversations = res.dataset.conversation.values
    conv = convergence(table, pair_distances(res.dataset, conversations), rng)
    fits = {}
    options = Options(seed=SEED, models=FIT_MODELS)
    csv = out / "discussions_greedy.csv"
    fits["probe"] = model_summary(fit_discussions(csv, out / "fit_probe", options, say=lambda s: None).to_json())
    text = Options(seed=SEED, text="text", models=tuple(m for m in FIT_MODELS if m != "fj"))
    embed = table_embedder(cache=out / "fit_text" / EMBEDDINGS_CACHE, say=lambda s: None)
    fits["embedding"] = model_summary(fit_discussions(csv, out / "fit_text", text, say=lambda s: None, embed=embed).to_json())
    return {
        "model": model,
        "pairs": pairs,
        "rounds": ROUNDS,
        "seconds": seconds,
        "command": f".venv/bin/python analysis/live_pairs.py --pairs {pairs}",
        "probe_form": res.summary["probes"][model]["form"],
        "validity": validity,
        "convergence": conv,
        "fits": fits,
    }


def figure(results: dict) -> Figure:
    with house_style():
        fig = Figure(figsize=(14, 4.2), layout="constrained")
        ax_g, ax_d, ax_s = fig.subplots(1, 3)
        for k, (model, r) in enumerate(results.items()):
            color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
            c = r["convergence"]
            rounds = np.arange(len(c["probe_gap"]))
            lo, hi = np.asarray(c["probe_gap_interval"]).T
            ax_g.fill_between(rounds, lo, hi, color=color, alpha=0.2)
            ax_g.plot(rounds, c["probe_gap"], "o-", color=color, label=f"{model} ({r['probe_form']!r})")
            lo, hi = np.asarray(c["embedding_distance_interval"]).T
            ax_d.fill_between(rounds, lo, hi, color=color, alpha=0.2)
            ax_d.plot(rounds, c["embedding_distance"], "o-", color=color, label=model)
            by = r["validity"]["mean_probe_by_stance"]
            ax_s.plot([int(s) for s in by], list(by.values()), "o-", color=color, label=model)
        ax_g.set_title("probe gap within a discussion (90% interval)")
        ax_g.set_ylabel("|probe_1 - probe_2|, scale -2..2")
        ax_d.set_title("embedding distance within a discussion")
        ax_d.set_ylabel("radians (MiniLM)")
        ax_s.set_title("round 0: probe against the assigned stance")
        ax_s.set_xlabel("assigned stance")
        ax_s.set_ylabel("mean probe")
        for ax in (ax_g, ax_d):
            ax.set_xlabel("round")
        for ax in (ax_g, ax_d, ax_s):
            ax.legend(fontsize="small")
        fig.suptitle(f"two-agent discussions with assigned stances ({next(iter(results.values()))['pairs']} pairs per model)")
    return fig


def main() -> None:
    from _common import write_numbers  # the analysis folder's helper: on the path when run as a script

    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    results = {m: study(m, args.pairs) for m in args.models.split(",")}
    for model, r in results.items():
        v = r["validity"]
        print(
            f"{model}: probe {r['probe_form']!r}, check set {v['check_set']['check_set']['negation_auc']:.2f}, "
            f"stance AUC {v['stance_auc_positive_vs_negative']:.2f}, mass {v['mean_mass']:.3f}"
        )
        for what, f in r["fits"].items():
            h = f["heldout"]
            print(
                f"  {what}: best {f['best']}, held-out skill vs persistence {h['skill_vs_persistence']:.3f} "
                f"{h['interval_vs_persistence']}, vs neighbours {h['skill_vs_neighbours']:.3f}; {f['params']}"
            )
    if args.pairs == 200 and args.models == ",".join(MODELS):
        write_numbers("live_pairs", {"statement": STATEMENT, "topic": TOPIC, "results": results})
        save_figure(figure(results), FIGURES / "live_pairs", ("png",))


if __name__ == "__main__":
    main()


def _iv(iv) -> str:
    return "[-]" if not iv or None in iv else f"[{iv[0]:.3f}, {iv[1]:.3f}]"


def check_table(doc: dict) -> str:
    """The README's probe rows: per model and question form, the check-set separation, the mass on
    the answers and the signal against the probe's numerical noise; the form each run chose."""
    lines = [
        "| model | form | paraphrase above rejection | above another proposal | mass on the answers | signal | noise | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, r in doc["results"].items():
        probes = r["validity"]["check_set"]
        for form, t in probes["forms"].items():
            chosen = " **(chosen)**" if form == probes["form"] else ""
            verdict = "reliable" if t["reliable"] else "unreliable"
            lines.append(
                f"| {model} | `{form}`{chosen} | {t['negation_auc']:.0%} | {t['agreement_auc']:.0%} | "
                f"{t['overall_mass']:.1%} | {t['signal']:+.2f} | {t['noise']:.2f} | {verdict} |"
            )
    lines.append("")
    lines.append(
        "Signal: mean probe of the paraphrases minus that of the rejections, on −2…2. Noise: the mean change of a "
        "probe between reading the sentences one at a time and in one batch (llama.cpp's sums differ with the "
        f"batch). A form counts as reliable at {UNRELIABLE_AUC:.0%} of pairs or more with its signal above twice its noise."
    )
    return "\n".join(lines) + "\n"


UNRELIABLE_AUC = 0.70


def table(doc: dict) -> str:
    """The README's pair-study table: per model and measure, the chosen model and its held-out skill
    against persistence and copy-the-partner, the mechanisms, and whether the discussions converge."""
    lines = [
        "| model | measured by | stance order at round 0 | gap within a pair, round 0 → 5 | best fit (chosen on training) "
        "| held-out skill vs persistence | vs the partner | peer coupling | its timescale (rounds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, r in doc["results"].items():
        v, c = r["validity"], r["convergence"]
        for what, f in r["fits"].items():
            h, p, iv = f["heldout"], f["params"], f["intervals"]
            if what == "probe":
                order = f"AUC {v['stance_auc_positive_vs_negative']:.2f}, r = {v['stance_correlation']:+.2f}"
                gap = f"{c['probe_gap'][0]:.2f} → {c['probe_gap'][-1]:.2f}"
            else:
                order = "-"
                gap = f"{c['embedding_distance'][0]:.3f} → {c['embedding_distance'][-1]:.3f} rad"
            coupling = "-" if "peer_coupling" not in p else f"{p['peer_coupling']:.3f} {_iv(iv.get('peer_coupling'))}"
            if "coupling_timescale" not in p:
                scale = "-"
            elif not iv.get("coupling_timescale") or None in iv["coupling_timescale"]:
                scale = "not identified: gone after the first exchange"
            else:
                scale = f"{p['coupling_timescale']:.2f} {_iv(iv['coupling_timescale'])}"
            lines.append(
                f"| {model} | {what} | {order} | {gap} | `{f['best']}` | {h['skill_vs_persistence']:.3f} "
                f"{_iv(h['interval_vs_persistence'])} | {h['skill_vs_neighbours']:.3f} | {coupling} | {scale} |"
            )
    lines.append("")
    for model, r in doc["results"].items():
        p = r["fits"]["probe"]["params"]
        if isinstance(p.get("attractor"), dict):
            points = ", ".join(f"{g} → " + ("none" if x is None else f"{x[0]:+.2f}") for g, x in p["attractor"].items())
            lines.append(f"{model}: probe attractors by assigned stance: {points}.")
    return "\n".join(lines).rstrip() + "\n"
