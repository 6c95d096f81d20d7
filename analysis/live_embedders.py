"""What the live numbers rest on: the embedder, and messages free of prompt scaffolding.

1. Scaffolding. ``analysis/live32.toml`` with stochastic decoding (T = 0.8, seed 0) for 12
   rounds: with the transcript prompt used until November 2026 (``TRANSCRIPT_PROMPT``) and
   messages used as written (``live.clean = false``, as then), with the same prompt and the
   cleaner, and with today's default prompt and the cleaner: the share of generated
   messages whose raw output holds either prompt's labels, per round, before and after
   cleaning; and the last round's mean distance to the anchor over all messages as written
   against the clean ones only.
2. Embedders. Every conversation of ``live_population.py`` (run it first) measured again,
   without generating anything, with the generator's own states (``live.embedding_model =
   "self"``): does the population move toward the anchor or away, and what does the fit
   say, under each embedder?

Writes figures/live_embedders.png and figures/live_embedders.json; runs stay in
runs/analysis_embedders/.

    .venv/bin/python analysis/live_embedders.py
"""

from __future__ import annotations

import json
import shutil

import numpy as np
from _common import FIGURES, ROOT, write_numbers
from matplotlib.figure import Figure

from hivemind import load_scenario
from hivemind.live.cleaner import Scaffold
from hivemind.live.conversation import Embeddings, geodesic
from hivemind.live.prompts import DEFAULT_OPENING, DEFAULT_PROMPT, NEIGHBOUR_LINE, TRANSCRIPT_PROMPT
from hivemind.live.run import run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure

SCENARIO = ROOT / "analysis" / "live32.toml"
POPULATION = ROOT / "runs" / "analysis_population"
OUT = ROOT / "runs" / "analysis_embedders"
ROUNDS = 12
STOCHASTIC = ['live.decoding="stochastic"', "live.temperature=0.8", "live.seed=0", f"live.rounds={ROUNDS}"]


def messages(out) -> list[dict]:
    lines = (out / "transcript.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def scaffolding(prompt_name: str, prompt: str, clean: bool = True) -> dict:
    """One 12-round stochastic run with ``prompt``: scaffolding per round, raw and cleaned, and the
    anchor distance over all raw messages against the clean ones (MiniLM and the model's states)."""
    out = OUT / f"prompt_{prompt_name}"
    over = [*STOCHASTIC, f"live.prompt={json.dumps(prompt)}", f"live.clean={str(clean).lower()}"]
    scenario = load_scenario(SCENARIO, over)
    again = (out / "transcript.jsonl").is_file()
    result = run_live(scenario, out, resume=again, say=lambda s: None, formats=("png",))
    labels = [str(v) for v in scenario.arrays.labels]
    both = Scaffold.of((DEFAULT_PROMPT, DEFAULT_OPENING, NEIGHBOUR_LINE, TRANSCRIPT_PROMPT), labels)
    generated = [r for r in messages(out) if r["generated"]]
    raw_rate, clean_rate = [], []
    for rnd in range(1, ROUNDS + 1):
        mine = [r for r in generated if r["round"] == rnd]
        raw_rate.append(sum(both.find(r.get("raw_text", r["text"])) for r in mine) / len(mine))
        clean_rate.append(sum(both.find(r["text"]) for r in mine) / len(mine))
    # The last round's messages as written (raw) and as kept (clean), both embedders.
    from hivemind.live.backends import load_population
    from hivemind.live.embedders import minilm

    pop, _ = load_population(load_scenario(SCENARIO, [*over, 'live.embedding_model="self"']), say=lambda s: None)
    embedders = {"minilm": Embeddings(minilm(2, say=lambda s: None)), "self": Embeddings(pop.embedder)}
    last = [r for r in generated if r["round"] == ROUNDS]
    first = [r for r in messages(out) if r["round"] == 0]
    distances = {}
    for name, embed in embedders.items():
        anchor = embed(scenario.live.anchor_text)

        def mean_distance(texts, embed=embed, anchor=anchor):
            return float(np.mean(geodesic(np.stack([embed(t) for t in texts]), anchor)))

        clean = [r["text"] for r in last if r["text"] and not both.find(r.get("raw_text", r["text"]))]
        distances[name] = {
            "round_0": mean_distance([r["text"] for r in first]),
            "final_all_raw": mean_distance([r.get("raw_text", r["text"]) or "." for r in last]),
            "final_clean_only": mean_distance(clean) if clean else None,
            "final_as_kept": mean_distance([r["text"] or "." for r in last]),
        }
    pop.close()
    return {
        "prompt": prompt_name,
        "cleaned": clean,
        "messages": len(generated),
        "scaffolding_raw": float(np.mean(raw_rate)),
        "scaffolding_after_cleaning": float(np.mean(clean_rate)),
        "scaffolding_raw_by_round": raw_rate,
        "scaffolding_after_cleaning_by_round": clean_rate,
        "distance": distances,
        "malformed_outputs": int(result.summary["table"][0]["malformed_outputs"]),
    }


def remeasured(name: str) -> dict:
    """A population run's conversation measured with MiniLM (as run) and with the model's own states."""
    src = POPULATION / name
    out = OUT / f"self_{name}"
    out.mkdir(parents=True, exist_ok=True)
    done = out / "summary.json"
    fresh = done.is_file() and (out / "transcript.jsonl").read_bytes() == (src / "transcript.jsonl").read_bytes()
    if not fresh:  # measured again only when the conversation changed
        shutil.copyfile(src / "transcript.jsonl", out / "transcript.jsonl")
    over = {
        "greedy": ['live.decoding="greedy"'],
        **{f"seed_{s}": ['live.decoding="stochastic"', "live.temperature=0.8", f"live.seed={s}"] for s in range(5)},
        **{f"temperature_{t}": ['live.decoding="stochastic"', f"live.temperature={t}"] for t in (0.4, 1.2)},
    }[name]
    mine = json.loads((src / "summary.json").read_text())
    scenario = load_scenario(SCENARIO, [*over, 'live.embedding_model="self"'])
    if fresh:
        theirs = json.loads(done.read_text())
    else:
        theirs = run_live(scenario, out, resume=True, say=lambda s: None, formats=("png",)).summary

    def of(summary):
        # The peer model (DeGroot with the anchor) of the run's fit, the same in both embeddings.
        row = summary["table"][0]
        fit = summary["fit"][row["decoding"]]["models"]["peer"]
        return {
            "initial_distance": row["initial_embedding_distance"],
            "final_distance": row["final_embedding_distance"],
            "change": row["final_embedding_distance"] - row["initial_embedding_distance"],
            "eta": fit["params"]["peer_coupling"],
            "kappa": fit["params"]["anchor_coupling"],
            "kappa_interval": fit["intervals"].get("anchor_coupling"),
            "separation": summary["embedder"]["check_set"]["separation"],
        }

    return {"run": name, "minilm": of(mine), "self": of(theirs)}


def main() -> None:
    print(f"{SCENARIO.name}: scaffolding over {ROUNDS} stochastic rounds, transcript prompt against today's default")
    prompts = [
        scaffolding("transcript_uncleaned", TRANSCRIPT_PROMPT, clean=False),
        scaffolding("transcript", TRANSCRIPT_PROMPT),
        scaffolding("default", DEFAULT_PROMPT),
    ]
    for p in prompts:
        d = p["distance"]
        print(
            f"  {p['prompt']} prompt: {p['scaffolding_raw']:.1%} of {p['messages']} messages with scaffolding as written, "
            f"{p['scaffolding_after_cleaning']:.1%} after cleaning; final distance to the anchor (MiniLM) all "
            f"{d['minilm']['final_all_raw']:.3f}, clean only {d['minilm']['final_clean_only']:.3f} "
            f"(round 0: {d['minilm']['round_0']:.3f}); Gemma's states all {d['self']['final_all_raw']:.3f}, "
            f"clean {d['self']['final_clean_only']:.3f} (round 0: {d['self']['round_0']:.3f})"
        )
    names = sorted(p.name for p in POPULATION.iterdir() if (p / "summary.json").is_file()) if POPULATION.is_dir() else []
    runs = [remeasured(n) for n in names]
    for r in runs:
        m, s = r["minilm"], r["self"]
        print(
            f"  {r['run']}: distance change MiniLM {m['change']:+.3f} rad, Gemma {s['change']:+.3f}; "
            f"kappa MiniLM {m['kappa']:.4f}, Gemma {s['kappa']:.4f}; eta {m['eta']:.3f} / {s['eta']:.3f}"
        )
    numbers = {"scenario": str(SCENARIO.relative_to(ROOT)), "rounds": ROUNDS, "prompts": prompts, "embedders": runs}
    write_numbers("live_embedders", numbers)
    save_figure(figure(prompts, runs), FIGURES / "live_embedders", ("png",))


def figure(prompts: list[dict], runs: list[dict]) -> Figure:
    with house_style():
        fig = Figure(figsize=(11, 4), layout="constrained")
        ax_s, ax_e = fig.subplots(1, 2)
        rounds = np.arange(1, ROUNDS + 1)
        for k, p in enumerate(prompts):
            c = CATEGORY_COLORS[k]
            ax_s.plot(
                rounds, 100 * np.asarray(p["scaffolding_raw_by_round"]), "o-", color=c, label=f"{p['prompt']} prompt, as written"
            )
            ax_s.plot(
                rounds,
                100 * np.asarray(p["scaffolding_after_cleaning_by_round"]),
                "x--",
                color=c,
                label=f"{p['prompt']}, as kept",
            )
        ax_s.set_xlabel("round")
        ax_s.set_ylabel("% of messages with prompt scaffolding")
        ax_s.set_title("32 agents, stochastic T = 0.8: scaffolding")
        ax_s.legend(frameon=False, fontsize=8)
        if runs:
            x = np.arange(len(runs))
            ax_e.bar(x - 0.2, [r["minilm"]["change"] for r in runs], 0.4, color=CATEGORY_COLORS[0], label="all-MiniLM-L6-v2")
            ax_e.bar(x + 0.2, [r["self"]["change"] for r in runs], 0.4, color=CATEGORY_COLORS[1], label="Gemma's own states")
            ax_e.axhline(0, color="0.5", lw=0.8)
            ax_e.set_xticks(x, [r["run"].replace("temperature_", "T=") for r in runs], rotation=45, ha="right")
            ax_e.set_ylabel("final minus initial mean distance to the anchor (rad)")
            ax_e.set_title("toward (<0) or away from (>0) the anchor, by embedder")
            ax_e.legend(frameon=False, fontsize=8)
    return fig


if __name__ == "__main__":
    main()
