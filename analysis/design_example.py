"""How many stubborn agents keep the collapse paper's population diverse? `hivemind design`'s worked example.

The anchor of the collapse paper (infinite inertia, scenarios/design_collapse.toml: 200 agents on
S^15, a scale-free graph, degree inertia) absorbs everyone: after T = 100 steps the dispersion
(the mean pairwise geodesic distance of the engine's sample) is less than a hundredth of its start.
Making k agents stubborn (theta = 1: each holds its own initial state) keeps some of it. For
k = 1 to 24 (``BUDGETS``) this chooses the k agents three ways, by gradient (``hivemind.design``,
the relaxation rounded), by greedy (one evaluation per candidate per round; greedy's choices are
nested, so one run of 24 rounds gives every k) and by degree, evaluates each choice through the
engine, and
asks for the smallest k whose dispersion after T steps is at least half the starting one.

Writes figures/design_example.json and figures/design_example.png (docs/guide/design.md
quotes the table through analysis/readme_blocks.py).

    .venv/bin/python analysis/design_example.py
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import FIGURES, SCENARIOS, write_numbers

from hivemind import load_scenario
from hivemind.design import design, heuristics
from hivemind.design.interventions import intervention
from hivemind.design.problem import problem

BUDGETS = (1, 2, 4, 8, 10, 12, 14, 16, 20, 24)
HORIZON = 100
STEPS = 150  # the optimiser's iterations per budget


def table(doc: dict) -> str:
    """docs/guide/design.md's table (readme_blocks.py renders it; tests check it)."""
    lines = [
        "| stubborn agents k | by gradient | by greedy | by degree |",
        "|---:|---:|---:|---:|",
    ]
    for k, b in enumerate(doc["budgets"]):
        cells = [doc[m][k] for m in ("gradient", "greedy", "degree")]
        shown = [f"**{v:.3f}**" if v >= doc["threshold"] else f"{v:.3f}" for v in cells]
        lines.append(f"| {b} | " + " | ".join(shown) + " |")
    answer = doc["answer"]
    said = "; ".join(
        f"{m}: {answer[m]}" if answer[m] is not None else f"{m}: more than {doc['budgets'][-1]}"
        for m in ("gradient", "greedy", "degree")
    )
    lines.append("")
    lines.append(
        f"Dispersion after {doc['horizon']} steps (rad); it starts at {doc['start']:.3f}, half of it is {doc['threshold']:.3f} "
        f"(bold: at or above), and without stubborn agents it ends at {doc['baseline']:.4f}. Smallest k that keeps half: {said}."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    sc = load_scenario(SCENARIOS / "design_collapse.toml")
    kmax = max(BUDGETS)
    with jax.enable_x64(True):
        prob = problem(sc, "diversity", HORIZON)
        iv = intervention(prob, "stubborn", kmax)
        _, trace = prob.final_states(prob.base)
        start = float(np.asarray(trace)[:, 0].mean())
        baseline = float(prob.value(prob.base))
        greedy_order, how = heuristics.greedy(prob, iv, kmax, "max")
        degree_order = heuristics.degree(prob, iv, kmax)
        greedy = [heuristics.evaluate(prob, iv, greedy_order[:k]) for k in BUDGETS]
        degree = [heuristics.evaluate(prob, iv, degree_order[:k]) for k in BUDGETS]
    gradient, chosen = [], []
    for k in BUDGETS:
        result = design(sc, "diversity", "stubborn", k, horizon=HORIZON, steps=STEPS, compare=False)
        gradient.append(result.value)
        chosen.append(list(result.chosen))
        print(
            f"k = {k}: gradient {result.value:.4f}, greedy {greedy[BUDGETS.index(k)]:.4f}, degree {degree[BUDGETS.index(k)]:.4f}"
        )
    threshold = start / 2
    answer = {
        name: next((k for k, v in zip(BUDGETS, values, strict=True) if v >= threshold), None)
        for name, values in (("gradient", gradient), ("greedy", greedy), ("degree", degree))
    }
    doc = {
        "scenario": "scenarios/design_collapse.toml",
        "objective": "diversity",
        "horizon": HORIZON,
        "optimiser_steps": STEPS,
        "budgets": list(BUDGETS),
        "start": start,
        "threshold": threshold,
        "baseline": baseline,
        "gradient": gradient,
        "greedy": greedy,
        "degree": degree,
        "gradient_chosen": chosen,
        "greedy_order": list(greedy_order),
        "degree_order": list(degree_order),
        "greedy_how": how,
        "answer": answer,
    }
    write_numbers("design_example", doc)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values, marker in (("by gradient", gradient, "o"), ("by greedy", greedy, "s"), ("by degree", degree, "^")):
        ax.plot(BUDGETS, values, marker=marker, label=name)
    ax.axhline(threshold, color="0.4", ls="--", lw=1, label="half the starting dispersion")
    ax.axhline(baseline, color="0.7", ls=":", lw=1, label="no stubborn agent")
    ax.set_xscale("log", base=2)
    ax.set_xticks(BUDGETS, [str(k) for k in BUDGETS])
    ax.set_xlabel("stubborn agents k")
    ax.set_ylabel(f"dispersion after {HORIZON} steps (rad)")
    ax.set_title("200 agents on S^15 around the anchor: who should hold out?")
    ax.legend(fontsize=8)
    fig.savefig(FIGURES / "design_example.png", dpi=130, bbox_inches="tight")
    print(f"wrote {FIGURES / 'design_example.json'} and design_example.png; smallest k keeping half: {answer}")


if __name__ == "__main__":
    main()
