"""``hivemind fit`` on the two published datasets of two-agent LLM discussions (Brockers, Ehrlich &
Priesemann 2025; ``hivemind.datasets``: brockers2025_mixtral, brockers2025_dolphin_mixtral): which
mechanisms forecast the opinions of discussions, compared on the training discussions by
cross-validation, and the chosen model's skill on the held-out ones, against persistence, the
partner's opinion and the mean.

Writes ``figures/llm_discussions.json`` (every number the README's fit table quotes) and
``figures/llm_discussions_<dataset>.png`` (the fit with attractors by stance and wording), and prints
that table; ``table(doc)`` renders it, and the tests check the README against it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"mixtral_8x7b": "dataset:brockers2025_mixtral", "dolphin_mixtral": "dataset:brockers2025_dolphin_mixtral"}
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
            "cv_skill_vs_neighbours": m["cv"]["skill_vs_neighbours"],
            "params": m["params"],
            "intervals": m["intervals"],
        }
    return {
        "dataset": doc["data"]["file"],
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
    """The README's table: each model's cross-validated skill against persistence on the training
    discussions (90 % interval over discussions; the choice), per dataset, then the chosen model's
    skill on the held-out discussions (the only model scored there), and a sentence on each."""
    names = list(doc["datasets"])
    lines = [
        "| model | " + " | ".join(f"{n}: cross-validated skill vs persistence" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model in SHOWN:
        cells = []
        for n in names:
            m = doc["datasets"][n]["models"][model]
            best = " **(chosen)**" if doc["datasets"][n]["best"] == model else ""
            cells.append(f"{m['cv_skill_vs_persistence']:.3f} {_iv(m['cv_interval'])}{best}")
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        h = doc["datasets"][n]["best_heldout"]
        cells.append(f"{h['skill_vs_persistence']:.3f} {_iv(h['interval_vs_persistence'])}")
    lines.append("| the chosen model on the held-out discussions | " + " | ".join(cells) + " |")
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
            f"{p['attractor_coupling']:.3f} {_iv(iv['attractor_coupling'])}; held-out skill against the partner's opinion "
            f"{d['best_heldout']['skill_vs_neighbours']:.3f}, against the mean {d['best_heldout']['skill_vs_mean']:.3f}."
        )
        if isinstance(p.get("attractor"), dict):
            points = ", ".join(f"{g} → {_point(v)}" for g, v in p["attractor"].items())
            lines.append(f"  Attractors by {d['best'].split('[')[1].split(']')[0]}: {points}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    from hivemind.plot import discussions_figure, save_figure
    from hivemind.theory.fitting import most_skilful
    from hivemind.theory.fitting.data import Options, fit_discussions

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "llm_discussions"))
    args = ap.parse_args()
    doc = {"source": "Brockers, Ehrlich & Priesemann (2025), BSD-3; hivemind.datasets", "datasets": {}}
    for name, file in DATASETS.items():
        merged, held = None, {}
        for by in GROUPINGS:
            print(f"fitting {name}, attractors by {by}", flush=True)
            out = Path(args.out) / f"{name}_by_{by.replace(',', '_')}"
            fitted = fit_discussions(file, out, Options(attractor_by=by), say=lambda s: None).to_json()
            result = summarise(fitted)
            held[fitted["best"]] = fitted["best_heldout"]
            if by == GROUPINGS[-1]:
                save_figure(discussions_figure(fitted), ROOT / "figures" / f"llm_discussions_{name}", ("png",))
            if merged is None:
                merged = result
            else:
                merged["models"] |= result["models"]
        # The choice over both fits, by the fit's own rule, on training data alone.
        models = merged["models"]
        merged["best"] = most_skilful(
            {m: v["cv_skill_vs_persistence"] for m, v in models.items()}, {m: v["n_params"] for m, v in models.items()}
        )
        # Each fit scores its own choice on the held-out discussions; the choice over both is one of them.
        merged["best_heldout"] = held[merged["best"]]
        doc["datasets"][name] = merged
    JSON.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))


if __name__ == "__main__":
    main()
