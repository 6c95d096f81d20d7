"""``hivemind fit`` on the two published datasets of two-agent LLM discussions (Brockers, Ehrlich &
Priesemann 2025; ../shared/data/llm_discussions): which mechanisms forecast the opinions of
held-out discussions, against persistence, the partner's opinion and the mean.

Writes ``figures/llm_discussions.json`` (every number the README's fit table quotes) and prints
that table; ``table(doc)`` renders it, and the tests check the README against it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "llm_discussions"
DATASETS = {"mixtral_8x7b": "mixtral_8x7b_climate.csv", "dolphin_mixtral": "dolphin_mixtral_climate.csv"}
SHOWN = ("peer", "peer+decay", "attractor", "attractor[stance]", "attractor[stance]+decay")
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


def _iv(iv) -> str:
    return f"[{iv[0]:.3f}, {iv[1]:.3f}]"


def table(doc: dict) -> str:
    """The README's table: held-out skill against persistence (90 % interval over discussions) per model and dataset."""
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
    return "\n".join(lines)


def main() -> None:
    from hivemind.live.discussions import fit

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "llm_discussions"))
    args = ap.parse_args()
    doc = {"source": "Brockers, Ehrlich & Priesemann (2025), BSD-3; shared/data/llm_discussions", "datasets": {}}
    for name, file in DATASETS.items():
        print(f"fitting {name}", flush=True)
        result = fit(DATA / file, Path(args.out) / name, say=lambda s: None)
        doc["datasets"][name] = summarise(result)
    JSON.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))


if __name__ == "__main__":
    main()
