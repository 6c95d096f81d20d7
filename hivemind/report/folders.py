"""An output folder's report: its kind, its verdict, its full tables (``report.txt``) and a page
to look at (``report.html``), rebuilt from the files the folder already holds.

Kinds: a run (``run.nc``, ``manifest.json``), a sweep (``sweep.nc``), a live run
(``summary.json``, ``transcript.jsonl``, ``live.nc``) and a fit (``fit.json``).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind.errors import InputError
from hivemind.io.documents import FitDocument, LiveSummary, Manifest, read_fit, read_manifest, read_summary, read_sweep
from hivemind.report import page as P
from hivemind.report import verdict as V

TEXT, HTML = "report.txt", "report.html"


class ReportError(InputError):
    """A folder that is not a hivemind output folder, or one whose files cannot be read."""


@dataclass(frozen=True)
class Report:
    kind: str
    verdict: list[str]
    text: str  # the full tables
    html: str


def kind_of(out: Path) -> str:
    out = Path(out)
    if not out.is_dir():
        raise ReportError(f"{out}: not a folder")
    if (out / "run.nc").is_file() and (out / "manifest.json").is_file():
        return "run"
    if (out / "sweep.nc").is_file():
        return "sweep"
    if (out / "summary.json").is_file() and (out / "transcript.jsonl").is_file():
        return "live"
    if (out / "fit.json").is_file():
        return "fit"
    if (out / "design.json").is_file():
        return "design"
    raise ReportError(f"{out}: not a hivemind output folder (no run.nc, sweep.nc, summary.json, fit.json or design.json)")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def build(out: str | Path) -> Report:
    """The report of the folder ``out``; ``ReportError`` for a folder of no known kind."""
    out = Path(out)
    kind = kind_of(out)
    if kind == "design":
        from hivemind.report.design import design_report

        return Report("design", *design_report(out))
    return {"run": _run, "sweep": _sweep, "live": _live, "fit": _fit}[kind](out)


def write(out: str | Path) -> Report:
    """Build the report and write ``report.txt`` and ``report.html`` into ``out``."""
    from hivemind.io.atomic import atomic_write

    out = Path(out)
    report = build(out)
    text = "\n".join(report.verdict) + "\n\n" + report.text + "\n"
    atomic_write(out / TEXT, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    atomic_write(out / HTML, lambda tmp: Path(tmp).write_text(report.html, encoding="utf-8"))
    return report


# --- a run -------------------------------------------------------------------------------


def run_text(manifest: Manifest) -> str:
    s = manifest.summary
    values = {} if s is None else {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
    lines = [f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in values.items() if v is not None]
    theory = manifest.theory.raw if manifest.theory is not None else {}
    for part in ("predicted", "measured"):
        for k, v in (theory.get(part) or {}).items():
            lines.append(f"theory.{part}.{k}: {v}")
    if "relative_error" in theory:
        lines.append(f"theory.relative_error: {theory['relative_error']}")
    lines.append(f"wall_time_s: {manifest.wall_time_s}")
    lines.append(f"kernel: {manifest.kernel} ({manifest.versions.get('kernel_build', 'build unknown')})")
    return "\n".join(lines)


def _mean_over_agents(da, values: int = 1 << 24) -> np.ndarray:
    """The mean over agents per (seed, step), read a block of steps at a time: a file-backed run of
    10^6 agents would otherwise be loaded whole (about 1 GB per 250 records) to draw one line."""
    per_step = max(1, da.sizes["seed"] * da.sizes["agent"])
    block = max(1, values // per_step)
    n = da.sizes["step"]
    return np.concatenate([da.isel(step=slice(k, k + block)).mean("agent").values for k in range(0, n, block)], axis=1)


def _run(out: Path) -> Report:
    from hivemind.io.records import open_result

    manifest = read_manifest(out / "manifest.json")
    ds = open_result(out / "run.nc")
    anchored = bool(np.asarray(ds.anchor_agent.values).size) if "anchor_agent" in ds else True
    distance = _mean_over_agents(ds.distance_to_anchor) if anchored else ds.dispersion.values  # (seed, step)
    verdict = V.run(manifest, distance[:, -1].tolist() if anchored else None)
    text = run_text(manifest)
    steps = ds.step.values
    series = {f"seed {s}": distance[k] for k, s in enumerate(ds.seed.values.tolist()[:6])}
    theory = manifest.theory
    rate = None if theory is None else theory.predicted_rate
    first = None if theory is None else theory.first_step
    if rate is not None and rate > 0 and first is not None and first in steps:
        # The linearised theory holds near the anchor: drawn from where the rate was measured.
        k = int(np.flatnonzero(steps == first)[0])
        series["theory (linearised)"] = np.where(steps >= first, distance[0, k] * (1 - rate) ** (steps - first), np.nan)
    what = "mean distance to the anchor" if anchored else "mean pairwise distance (no anchor)"
    chart = P.line_chart(steps, series, "step", what, log_y=bool(np.all(distance > 0)))
    pngs = sorted((out / "figures").glob("*.png")) if (out / "figures").is_dir() else []
    figures = chart + "".join(P.figure(p.read_bytes(), p.stem) for p in pngs)
    if not pngs:
        figures += (
            f"<p>More figures: <code>hivemind plot {P.esc(out)}</code>, then <code>hivemind report {P.esc(out)}</code>.</p>"
        )
    sections = [
        P.verdict_section(verdict),
        P.section("Figures", figures, "figures"),
        P.scenario_section(manifest.scenario_text),
        P.text_section(text),
    ]
    name = manifest.scenario.get("name", out.name)
    html = P.page(f"hivemind run: {name}", str(out), sections)
    return Report("run", verdict, text, html)


# --- a sweep -----------------------------------------------------------------------------


def sweep_rows(ds) -> tuple[list[dict], list[str]]:
    """One row per grid point with the seeds' means, and the swept keys."""
    from hivemind.runner.sweep import swept_keys

    keys = list(swept_keys(ds))
    flat = ds[["final_mean_distance", "steps_to_tolerance", "clusters", "diverged"]].stack(point=keys)
    rows = []
    for i in range(flat.point.size):
        p = flat.isel(point=i)
        steps = p.steps_to_tolerance.values
        row = {k: p[k].item() for k in keys}
        row |= {
            "final_mean_distance": float(np.nanmean(p.final_mean_distance.values)),
            "steps_to_tolerance": float(np.nanmean(steps)) if np.isfinite(steps).any() else float("nan"),
            "reached": float(np.mean(np.isfinite(steps))),
            "clusters": float(np.mean(p.clusters.values)),
            "diverged": float(np.mean(p.diverged.values)),
        }
        rows.append(row)
    return rows, keys


def sweep_text(rows: list[dict], keys: list[str]) -> str:
    header = (
        "".join(f"{k:>22}" for k in keys)
        + f"{'final mean dist':>17}{'steps to tol':>14}{'reached':>9}{'clusters':>10}{'diverged':>10}"
    )
    lines = [header]
    for r in rows:
        cells = "".join(f"{r[k]:>22.4g}" if isinstance(r[k], float) else f"{str(r[k]):>22}" for k in keys)
        steps = r["steps_to_tolerance"]
        lines.append(
            f"{cells}{r['final_mean_distance']:>17.3g}{'never' if steps != steps else f'{steps:.0f}':>14}"
            f"{r['reached']:>9.0%}{r['clusters']:>10.3g}{r['diverged']:>10.2g}"
        )
    return "\n".join(lines)


def _sweep(out: Path) -> Report:
    from hivemind.io.records import open_result
    from hivemind.plot import sweep_figure

    ds = open_result(out / "sweep.nc")
    rows, keys = sweep_rows(ds)
    png = out / "sweep.png"
    tol = ds.attrs.get("tolerance")
    verdict = V.sweep(rows, keys, None if tol is None else float(tol))
    text = sweep_text(rows, keys)
    scenario_text = read_sweep(out / "sweep.json").scenario_text if (out / "sweep.json").is_file() else None
    header = [*keys, "final mean distance", "steps to tolerance", "seeds reached", "clusters", "diverged"]
    table_rows = [
        [r[k] if not isinstance(r[k], float) else float(f"{r[k]:.6g}") for k in keys]
        + [
            float(f"{r['final_mean_distance']:.4g}"),
            "never" if r["steps_to_tolerance"] != r["steps_to_tolerance"] else round(r["steps_to_tolerance"]),
            f"{r['reached']:.0%}",
            float(f"{r['clusters']:.3g}"),
            float(f"{r['diverged']:.2g}"),
        ]
        for r in rows
    ]
    sections = [
        P.verdict_section(verdict),
        P.section(
            "Phase diagram",
            P.figure(png.read_bytes() if png.is_file() else _png(sweep_figure(ds)), "phase diagram"),
            "phase-diagram",
        ),
        P.section("Grid points (the seeds' means)", P.table(header, table_rows, "points"), "points-section"),
        P.scenario_section(scenario_text),
    ]
    html = P.page(f"hivemind sweep: {ds.attrs.get('scenario', out.name)}", str(out), sections)
    return Report("sweep", verdict, text, html)


# --- a fit -------------------------------------------------------------------------------


def fit_text(doc: FitDocument) -> str:
    from hivemind.theory.fitting.describe import format_fit

    if doc.per_decoding:
        return "\n\n".join(f"{name}:\n{format_fit(one)}" for name, one in doc.conversations.items())
    return format_fit(doc.conversations[""])


def _fit(out: Path) -> Report:
    from hivemind.theory.fitting.describe import skill_text

    doc = read_fit(out / "fit.json")
    verdict = V.fit(doc)
    text = fit_text(doc)
    figs = "".join(P.figure(f.read_bytes(), f.stem) for f in sorted(out.glob("fit*.png")))
    # Models are compared on training data; the chosen one's held-out skill is in the verdict.
    header = ["conversation", "model", "parameters", "skill vs persistence (training data)", "vs neighbours", "later rounds"]
    rows = [
        [run, name, "-", f"refused: {m['refused']}", "", ""]
        if "refused" in m
        else [
            run,
            name,
            m["n_params"],
            skill_text(m.get("cv") or m.get("validation"), "persistence"),
            skill_text(m.get("cv") or m.get("validation"), "neighbours"),
            skill_text(m.get("one_step"), "persistence"),
        ]
        for run, one in doc.conversations.items()
        for name, m in one["models"].items()
    ]
    sections = [
        P.verdict_section(verdict),
        P.section("Figure", figs, "figures") if figs else "",
        P.section(
            "Models, compared on training data (the chosen one's held-out skill is in the verdict)",
            P.table(header, rows, "models"),
            "models-section",
        ),
        P.text_section(text),
    ]
    return Report("fit", verdict, text, P.page("hivemind fit", str(out), sections))


# --- a live run --------------------------------------------------------------------------


def live_text(summary: LiveSummary) -> str:
    from hivemind.live.report import format_table

    return format_table(summary.raw)


def _live(out: Path) -> Report:
    from hivemind.report.conversation import build as live_build

    summary = read_summary(out / "summary.json")
    text = live_text(summary)
    verdict, html = live_build(out, summary, text)
    return Report("live", verdict, text, html)
