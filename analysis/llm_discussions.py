"""``hivemind fit`` on the two published datasets of two-agent LLM discussions (Brockers, Ehrlich &
Priesemann 2025; ../shared/data/llm_discussions): which mechanisms forecast the opinions of
held-out discussions, against persistence, the partner's opinion and the mean.

Writes ``figures/llm_discussions.json`` (every number the README's fit table quotes) and
``figures/llm_discussions_<dataset>.png`` (the fit with attractors by stance and wording), and prints
that table; ``table(doc)`` renders it, and the tests check the README against it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "llm_discussions"
DATASETS = {"mixtral_8x7b": "mixtral_8x7b_climate.csv", "dolphin_mixtral": "dolphin_mixtral_climate.csv"}
SHOWN = (
    "peer",
    "peer+decay",
    "fj+decay",
    "attractor",
    "attractor+decay",
    "attractor[stance]+decay",
    "attractor[stance,framing]",
    "attractor[stance,framing]+decay",
    "groups[stance]+decay",
    "groups[stance,framing]+decay",
)
# The attractors per assigned stance, and per stance and the probe's framing (normal or negated
# wording): one fit each, on the same split and folds, every model compared by its
# cross-validated skill on the training discussions.
GROUPINGS = ("stance", "stance,framing")
JSON = ROOT / "figures" / "llm_discussions.json"


def summarise(doc: dict) -> dict:
    models = {}
    for name, m in doc["models"].items():
        models[name] = {
            "n_params": m["n_params"],
            "cv_skill_vs_persistence": m["cv"]["skill_vs_persistence"],
            "cv_interval": m["cv"]["interval_vs_persistence"],
            "heldout_skill_vs_persistence": m["heldout"]["skill_vs_persistence"],
            "heldout_interval": m["heldout"]["interval_vs_persistence"],
            "heldout_skill_vs_neighbours": m["heldout"]["skill_vs_neighbours"],
            "heldout_skill_vs_mean": m["heldout"]["skill_vs_mean"],
            "params": m["params"],
            "intervals": m["intervals"],
        }
    return {
        "conversations": doc["data"]["conversations"],
        "training": doc["design"]["training_conversations"],
        "heldout": doc["design"]["heldout_conversations"],
        "selection": doc["design"]["selection"],
        "best": doc["best"],
        "best_heldout": doc["best_heldout"],
        "models": models,
    }


def _point(v) -> str:
    return "none (drift only)" if v is None else f"{v[0]:+.2f}"


def _iv(iv) -> str:
    return f"[{iv[0]:.3f}, {iv[1]:.3f}]"


def table(doc: dict) -> str:
    """The README's table: held-out skill against persistence (90 % interval over discussions)
    per model and dataset, and a sentence on the chosen model of each."""
    names = list(doc["datasets"])
    lines = [
        "| model | " + " | ".join(f"{n}: held-out skill vs persistence" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model in SHOWN:
        cells = []
        for n in names:
            m = doc["datasets"][n]["models"][model]
            best = " **(best)**" if doc["datasets"][n]["best"] == model else ""
            cells.append(f"{m['heldout_skill_vs_persistence']:.3f} {_iv(m['heldout_interval'])}{best}")
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        d = doc["datasets"][n]
        b = d["models"][d["best"]]
        p, iv = b["params"], b["intervals"]
        t = p.get("coupling_timescale")
        decay = (
            f"fading with timescale {t:.2f} rounds {_iv(iv['coupling_timescale'])}"
            if t is not None and iv.get("coupling_timescale") and None not in iv["coupling_timescale"]
            else "gone after the first exchange (its timescale is not identified)"
            if t is not None
            else "constant"
        )
        lines.append(
            f"{n}: chosen `{d['best']}` ({d['training']} training discussions, {d['heldout']} held out); peer coupling "
            f"{p['peer_coupling']:.3f} {_iv(iv['peer_coupling'])} at round 0, {decay}; attractor coupling "
            f"{p['attractor_coupling']:.3f} {_iv(iv['attractor_coupling'])}; skill against the partner's opinion "
            f"{b['heldout_skill_vs_neighbours']:.3f}, against the mean {b['heldout_skill_vs_mean']:.3f}."
        )
        if isinstance(p.get("attractor"), dict):
            points = ", ".join(f"{g} → {_point(v)}" for g, v in p["attractor"].items())
            lines.append(f"  Attractors by {d['best'].split('[')[1].split(']')[0]}: {points}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    from hivemind.live.discussions import Options, fit_discussions
    from hivemind.theory.fitting import most_skilful

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "llm_discussions"))
    args = ap.parse_args()
    doc = {"source": "Brockers, Ehrlich & Priesemann (2025), BSD-3; shared/data/llm_discussions", "datasets": {}}
    for name, file in DATASETS.items():
        merged = None
        for by in GROUPINGS:
            print(f"fitting {name}, attractors by {by}", flush=True)
            out = Path(args.out) / f"{name}_by_{by.replace(',', '_')}"
            result = summarise(fit_discussions(DATA / file, out, Options(attractor_by=by), say=lambda s: None))
            if by == GROUPINGS[-1]:
                shutil.copyfile(out / "fit.png", ROOT / "figures" / f"llm_discussions_{name}.png")
            if merged is None:
                merged = result
            else:
                merged["models"] |= result["models"]
        # The choice over both fits, by the fit's own rule, on training data alone.
        models = merged["models"]
        merged["best"] = most_skilful(
            {m: v["cv_skill_vs_persistence"] for m, v in models.items()}, {m: v["n_params"] for m, v in models.items()}
        )
        best = merged["models"][merged["best"]]
        merged["best_heldout"] = {
            "skill_vs_persistence": best["heldout_skill_vs_persistence"],
            "interval_vs_persistence": best["heldout_interval"],
            "skill_vs_neighbours": best["heldout_skill_vs_neighbours"],
            "skill_vs_mean": best["heldout_skill_vs_mean"],
        }
        doc["datasets"][name] = merged
    JSON.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))


if __name__ == "__main__":
    main()
