"""fit.json as text a person reads: the verdict first (the model chosen on training data and its
held-out skill), then one line per model with the score that chose (cross-validated, or on later
training rounds) and the later-rounds score; a refused model says why instead of a number."""

from __future__ import annotations

import numpy as np


def skill_text(score: dict | None, base: str) -> str:
    """A score's skill against ``base`` with its interval, "+0.273 [+0.238, +0.307]", or "-"."""
    if not score or score.get(f"skill_vs_{base}") is None:
        return "-"
    iv = score.get(f"interval_vs_{base}")
    s = f"{score[f'skill_vs_{base}']:+.3f}"
    return s + (f" [{iv[0]:+.3f}, {iv[1]:+.3f}]" if iv else "")


def _short(v) -> str:
    if v is None:
        return "-"
    a = np.ravel(np.asarray(v, np.float64))
    return f"{a[0]:.3g}" if a.size == 1 else f"({a.size} coords)"


def params_line(model: dict) -> str:
    """The estimates of one model of fit.json; a scalar that the data do not identify (intervals
    were computed, and it has none) is named "unidentified", not given a number."""
    params, intervals = model["params"], model.get("intervals") or {}
    shown = []
    for k, v in params.items():
        if k in ("coupling_decay", "attractor_drift"):
            continue
        if intervals and k in intervals and intervals[k] is None and isinstance(v, float):
            shown.append(f"{k} unidentified")
        elif isinstance(v, float):
            shown.append(f"{k} {v:.3g}")
        elif v is None:
            shown.append(f"{k} none" if k == "coupling_timescale" else f"{k} -")
        elif isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()):  # by (receiver, sender) group
            shown.append(f"{k} " + " ".join(f"{r}<-{c}:{_short(x)}" for r, row in v.items() for c, x in row.items()))
        elif isinstance(v, dict):
            shown.append(f"{k} " + " ".join(f"{g}:{_short(x)}" for g, x in v.items()))
        else:
            shown.append(f"{k} {_short(v)}")
    return ", ".join(shown)


def heldout_text(doc: dict) -> str:
    """The chosen model's held-out skill against each baseline, or why there is none."""
    held = doc.get("best_heldout")
    design = doc["design"]
    if not held:
        return "  no held-out data (--test-share 0, or no round left after --train): nothing to report"
    unit = "rounds" if "rounds" in held else "discussions"
    what = (
        f"rounds after {design['heldout_from_round']}"
        if "heldout_from_round" in design
        else f"{len(design['heldout'])} discussions"
    )
    return (
        f"  held-out skill ({what}, seen once) vs persistence {skill_text(held, 'persistence')}, "
        f"vs neighbours {skill_text(held, 'neighbours')}, vs mean {skill_text(held, 'mean')} (90% intervals over {unit})"
    )


def format_fit(doc: dict) -> str:
    """The verdict first, then one line per model (see the module's docstring)."""
    d, design = doc["data"], doc["design"]
    best = doc["best"]
    ties = f"; ties of kinds {', '.join(d['tie_kinds'])}" if d.get("tie_kinds") else ""
    ties += ", weighted" if d.get("weighted_ties") else ""
    logs = "; opinions as logs" if d.get("transform") == "log" else ""
    lines = [
        f"{d['conversations']} discussions, {d['agents']} agents, up to {d['rounds']} rounds, {d['dims']} dims ({doc['space']})"
        f"{ties}{logs}; {design['training_conversations']} fitted, {design['heldout_conversations']} held out",
        f"best (chosen on training data: {design['selection']}): {best}",
        heldout_text(doc),
        f"  {params_line(doc['models'][best])}",
        "",
        f"  {'model':<28}{'k':>4}  {'chosen by (training data)':<32}{'later training rounds':>22}",
    ]
    for name, m in doc["models"].items():
        if "refused" in m:
            lines.append(f"  {name:<28}{'-':>4}  refused: {m['refused']}")
            continue
        chose = m.get("cv") or m.get("validation")
        which = "cv " if "cv" in m else "val " if chose else ""
        later = m.get("one_step", {}).get("skill_vs_persistence")
        lines.append(
            f"  {name:<28}{m['n_params']:>4}  {which + skill_text(chose, 'persistence'):<32}"
            f"{'-' if later is None else format(later, '+.3f'):>22}"
        )
    return "\n".join(lines)
