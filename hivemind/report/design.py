"""The report of a ``hivemind design`` folder: the verdict, the objective against the iterations,
the budget curve beside the heuristics, and the graph with what was chosen marked."""

from __future__ import annotations

from pathlib import Path

from hivemind.io.documents import read_design
from hivemind.report import page as P

# The graph is drawn up to this many nodes (a spring layout of more says nothing).
GRAPH_DRAW_MAX = 1500


def verdict(doc: dict) -> list[str]:
    """What a design found, in a few lines."""
    sense = "lowered" if doc["sense"] == "min" else "raised"
    lines = [
        f"design: {doc['objective']} {sense} from {doc['baseline']:.6g} to {doc['value']:.6g} by {doc['intervention']} "
        f"within a budget of {doc['budget']:g}" + ("" if doc["converged"] else " (the optimiser had not settled)")
    ]
    if doc.get("relaxed_value") is not None:
        lines.append(f"  relaxed (before rounding): {doc['relaxed_value']:.6g}")
    for name, h in (doc.get("heuristics") or {}).items():
        value = "-" if h["value"] is None else f"{h['value']:.6g}"
        lines.append(f"  {name}: {value}" + (f" ({h['how']})" if h.get("how") else ""))
    if len(doc.get("budgets", [])) > 1:
        curve = ", ".join(f"{b['budget']:g}: {b['value']:.4g}" for b in doc["budgets"])
        lines.append(f"  by budget: {curve}")
    return lines


def text(doc: dict) -> str:
    keys = (
        "objective",
        "sense",
        "intervention",
        "horizon",
        "budget",
        "baseline",
        "value",
        "relaxed_value",
        "converged",
        "residual",
    )
    lines = [f"{k}: {doc.get(k)}" for k in keys]
    lines += [f"settings.{k}: {v}" for k, v in doc["settings"].items()]
    return "\n".join(lines)


def design_report(out: Path) -> tuple[list[str], str, str]:
    doc = read_design(out / "design.json")
    lines = verdict(doc)
    iterations = list(range(1, len(doc["history"]) + 1))
    charts = P.line_chart(iterations, {"design (relaxed)": doc["history"]}, "iteration", doc["objective"])
    budgets = doc.get("budgets", [])
    if len(budgets) > 1:
        xs = [b["budget"] for b in budgets]
        series = {"design": [b["value"] for b in budgets], "baseline": [b["baseline"] for b in budgets]}
        for name in budgets[0].get("heuristics", {}):
            values = [b["heuristics"].get(name, {}).get("value") for b in budgets]
            if all(v is not None for v in values):
                series[name] = values
        charts += P.line_chart(xs, series, "budget", doc["objective"])
    graph = out / "design_graph.png"
    if graph.is_file():
        charts += P.figure(graph.read_bytes(), "the graph with the chosen agents or ties marked")
    rows = [["design", doc["value"]]] + [[k, h["value"] if h["value"] is not None else "-"] for k, h in doc["heuristics"].items()]
    sections = [
        P.verdict_section(lines),
        P.section("Figures", charts, "figures"),
        P.section("Against the heuristics", P.table(["choice", doc["objective"]], rows), "heuristics"),
        P.scenario_section(doc.get("scenario_text")),
        P.text_section(text(doc)),
    ]
    html = P.page(f"hivemind design: {doc['objective']} by {doc['intervention']}", str(out), sections)
    return lines, text(doc), html
