"""A mixed population: 32 Gemma 3 270M and 32 SmolLM2-135M agents for 12 rounds, and who pulls whom.

``scenarios/live_mixed.toml`` grown to 64 agents on a wheel (the families in pairs around the
ring, so every agent hears one peer of its own family and one of the other), greedy and
stochastic decoding at temperature 0.8, in-process (one llama.cpp batch per model file and
round). Stochastic decoding runs with ``--seeds`` seeds: their spread is the interval that
matters for a population measure. Each run is fitted with the group-coupling model
(the fit's ``groups[group]+decay`` model): eta[g, h], the pull of family h on family g, with sandwich intervals.

With ``--server``, the same scenario (seed 0) runs again through two local OpenAI-compatible
servers, llama-cpp-python's (``python -m llama_cpp.server``), one serving Gemma and one
SmolLM2, requests routed by model, and its measures are set beside the in-process runs'.
Both paths use ``live.chat = "none"`` (the text as written, no chat template), so that they
send the models the same text: on a server the template is the server's choice.

Writes figures/live_mixed.png and figures/live_mixed.json; the runs stay in
runs/analysis_mixed/ (finished runs are resumed, not redone).

    .venv/bin/python analysis/live_mixed.py --server     (about 40 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr
from _common import FIGURES, ROOT, SCENARIOS
from matplotlib.figure import Figure

from hivemind import load_scenario
from hivemind.live.backends.local_server import LlamaServer
from hivemind.live.model import named_model
from hivemind.live.run import run_live
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure

OUT = ROOT / "runs" / "analysis_mixed"
FAMILIES = ("gemma3", "smollm2")
MEASURES = ("final_compliance", "final_jaccard_to_anchor", "final_embedding_distance", "final_vendi_score")


def overrides(agents: int, rounds: int) -> list[str]:
    base = load_scenario(SCENARIOS / "live_mixed.toml").live
    models = [FAMILIES[(k // 2) % 2] for k in range(agents)]
    texts = [base.initial_texts[k % len(base.initial_texts)] for k in range(agents)]
    return [
        f"graph.n={agents + 1}",
        f"live.model={json.dumps(models)}",
        f"live.initial_texts={json.dumps(texts)}",
        f"live.rounds={rounds}",
        'live.chat="none"',
    ]


def finished(scenario, out) -> bool:
    """A run whose summary was written after a transcript of this very scenario: read, not refitted."""
    if not (out / "summary.json").is_file():
        return False
    header = json.loads((out / "transcript.jsonl").read_text().splitlines()[0])
    return header["fingerprint"] == scenario.fingerprint


def run(over: list[str], out, say=lambda s: None) -> dict:
    scenario = load_scenario(SCENARIOS / "live_mixed.toml", over)
    if finished(scenario, out):
        s = json.loads((out / "summary.json").read_text())
        ds = xr.load_dataset(out / "live.nc")
    else:
        again = (out / "transcript.jsonl").is_file()
        res = run_live(scenario, out, resume=again, say=say, formats=("png",))
        s, ds = res.summary, res.dataset
    table = {row["decoding"]: row for row in s["table"]}
    models = {d: s["fit"][d]["models"] for d in table}
    return {
        d: {
            "by_group": table[d]["by_group"],
            "coupling": models[d]["groups[group]+decay"],
            # The simplest alternative to the group couplings: one peer coupling for everyone,
            # compared the same way (on later training rounds, the score that chose the model).
            "skill_vs_persistence": {
                "groups": models[d]["groups[group]+decay"]["validation"]["skill_vs_persistence"],
                "peer": models[d]["peer+decay"]["validation"]["skill_vs_persistence"],
            },
            "distance": {g: ds.group_embedding_distance_to_anchor.sel(decoding=d, group=g).values.tolist() for g in FAMILIES},
            "compliance": {g: ds.group_compliance.sel(decoding=d, group=g).values.tolist() for g in FAMILIES},
        }
        for d in table
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=64)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--server", action="store_true", help="also run seed 0 through two local llama-cpp-python servers")
    p.add_argument("--out", default=str(OUT), help="where the runs go (finished runs are resumed)")
    p.add_argument("--figures", default=str(FIGURES))
    args = p.parse_args()
    out, figures = Path(args.out), Path(args.figures)
    over = overrides(args.agents, args.rounds)
    runs = {}
    print(f"{args.agents} agents ({args.agents // 2} per family), {args.rounds} rounds, in-process")
    runs["in-process seed 0"] = run([*over, 'live.decoding=["greedy", "stochastic"]'], out / "seed0", print)
    for seed in range(1, args.seeds):
        runs[f"in-process seed {seed}"] = run(
            [*over, 'live.decoding="stochastic"', f"live.seed={seed}"], out / f"seed{seed}", print
        )
    if args.server:
        servers = [LlamaServer(named_model(m), alias=m, log=out / f"server-{m}.log", threads=1) for m in FAMILIES]
        out.mkdir(parents=True, exist_ok=True)
        try:
            for s in servers:
                s.start()
            urls = ", ".join(f'"{s.url}"' for s in servers)
            server_over = [*over, 'live.decoding=["greedy", "stochastic"]', 'live.backend="openai"', f"live.endpoints=[{urls}]"]
            server_over.append("live.concurrency=32")
            runs["server seed 0"] = run(server_over, out / "server", print)
        finally:
            for s in servers:
                s.stop()
    numbers = summarize(runs)
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "live_mixed.json").write_text(json.dumps(numbers, indent=2, default=float) + "\n")
    save_figure(figure(runs, numbers), figures / "live_mixed", ("png",))
    shutil.copyfile(out / "seed0" / "live.png", figures / "live_mixed_seed0.png")
    print(f"{figures / 'live_mixed.png'}, {figures / 'live_mixed.json'}")


def matrix(by_pair: dict) -> np.ndarray:
    """fit.json's {hearer: {speaker: x}} as an array [hearer, speaker] in FAMILIES order (x may be an interval)."""
    return np.asarray([[by_pair[h][s] for s in FAMILIES] for h in FAMILIES])


def summarize(runs: dict) -> dict:
    """Each family's measures over the seeds, the server's against them, and the couplings over seeds:
    the pull of each family on the other, and how many times harder Gemma pulls SmolLM2 than the reverse."""
    out = {"runs": runs, "stochastic_seed_spread": {}, "server_within_seed_spread": {}}
    stochastic = [r["stochastic"] for k, r in runs.items() if k.startswith("in-process")]
    etas = np.asarray([matrix(r["coupling"]["params"]["group_coupling"]) for r in stochastic])
    # eta[hearer, speaker], groups in FAMILIES order: [1, 0] is Gemma's pull on SmolLM2.
    ratio = etas[:, 1, 0] / etas[:, 0, 1]
    out["couplings_over_seeds"] = {
        "gemma3_on_smollm2": etas[:, 1, 0].tolist(),
        "smollm2_on_gemma3": etas[:, 0, 1].tolist(),
        "gemma3_on_gemma3": etas[:, 0, 0].tolist(),
        "smollm2_on_smollm2": etas[:, 1, 1].tolist(),
        "anchor": [r["coupling"]["params"]["anchor_coupling"] for r in stochastic],
        "gemma3_over_smollm2_ratio": ratio.tolist(),
        "ratio_mean_and_range": [float(ratio.mean()), float(ratio.min()), float(ratio.max())],
    }
    for g in FAMILIES:
        for m in MEASURES:
            values = [r["by_group"][g][m] for r in stochastic]
            out["stochastic_seed_spread"][f"{g} {m}"] = [min(values), float(np.mean(values)), max(values)]
            if "server seed 0" in runs:
                v = runs["server seed 0"]["stochastic"]["by_group"][g][m]
                lo, hi = min(values), max(values)
                out["server_within_seed_spread"][f"{g} {m}"] = {"server": v, "in_process": [lo, hi], "within": lo <= v <= hi}
    return out


def figure(runs: dict, numbers: dict) -> Figure:
    with house_style():
        fig = Figure(figsize=(15, 4.4), layout="constrained")
        ax_d, ax_c, ax_e = fig.subplots(1, 3)
        for k, g in enumerate(FAMILIES):
            color = CATEGORY_COLORS[k]
            for label, r in runs.items():
                for d, style in (("greedy", "-"), ("stochastic", "--")):
                    if d not in r:
                        continue
                    server = label.startswith("server")
                    kw = dict(color=color, ls=style, lw=2.2 if not server else 1.2, marker="s" if server else None, ms=3)
                    name = f"{g}, {d}, {'server' if server else 'in-process'}" if label.endswith("seed 0") else None
                    ax_d.plot(r[d]["distance"][g], alpha=1.0 if label.endswith("seed 0") else 0.4, label=name, **kw)
                    ax_c.plot(r[d]["compliance"][g], alpha=1.0 if label.endswith("seed 0") else 0.4, **kw)
        ax_d.set_title("distance to the anchor, mean per family (rad)")
        ax_c.set_title("compliance per family")
        ax_d.set_ylim(bottom=0)
        ax_c.set_ylim(-0.03, 1.03)
        for ax in (ax_d, ax_c):
            ax.set_xlabel("round")
        ax_d.legend(fontsize="x-small")
        # The fitted couplings: eta[hearer, speaker] per run and decoding, with intervals.
        ticks, labels = [], []
        x = 0
        for label, r in runs.items():
            for d in ("greedy", "stochastic"):
                c = r.get(d, {}).get("coupling")
                if c is None:
                    continue
                eta, iv = matrix(c["params"]["group_coupling"]), c.get("intervals", {}).get("group_coupling")
                iv = None if iv is None else matrix(iv)
                for (a, b), marker in (((0, 1), "o"), ((1, 0), "s")):
                    lo, hi = iv[a, b] if iv is not None else (eta[a, b], eta[a, b])
                    ax_e.errorbar(
                        x, eta[a, b], yerr=[[eta[a, b] - lo], [hi - eta[a, b]]], fmt=marker, color=CATEGORY_COLORS[b], capsize=3
                    )
                ticks.append(x)
                labels.append(f"{label.replace('in-process ', '')}\n{d}")
                x += 1
        ax_e.set_xticks(ticks, labels, fontsize="x-small")
        ax_e.set_title("fitted pull, 90% intervals:\nSmolLM2 on Gemma (circles), Gemma on SmolLM2 (squares)", fontsize="medium")
        ax_e.set_ylim(bottom=0)
        fig.suptitle("32 Gemma 3 270M + 32 SmolLM2-135M agents around one anchor (live.chat = none)")
    return fig


if __name__ == "__main__":
    main()
