"""Sweeps of live runs: every grid point and seed is a whole ``hivemind live`` run, then one table.

    OUT/<key=value,...>/seed-<s>/   each point's run directory (transcript, tables, live.nc, summary.json)
    OUT/live_sweep.csv              one row per (point, seed, decoding): compliance, Jaccard, Vendi, fitted kappa
                                    (the one-step fit's peer model)
    OUT/live_sweep.json             the grid, the seeds and the rows
    OUT/live_sweep.png (, .pdf)     those measures against the first swept key, with seed bands

Seed ``s`` sets ``live.seed`` to the scenario's seed plus ``s``. Models are loaded once and
shared by every point that uses the same files and context settings. Each point's run
directory resumes like any live run, so ``--resume`` finishes a killed sweep without
regenerating a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hivemind.io.results import save_csv, save_json, versions
from hivemind.live.config import read_live
from hivemind.live.conversation import TRANSCRIPT
from hivemind.scenario import Scenario, ScenarioError, parse_scenario
from hivemind.scenario.grid import Grid, SweepError, point_scenarios


@dataclass
class LiveSweep:
    out: Path
    grid: Grid
    seeds: int
    table: pd.DataFrame
    files: list[Path]


def point_name(keys: tuple[str, ...], point: tuple) -> str:
    return ",".join(f"{k}={v}" for k, v in zip(keys, point, strict=True)).replace("/", "_")


def live_points(scenario: Scenario, grid: Grid, seeds: int) -> list[tuple[tuple, int, Scenario]]:
    """(point, seed, scenario) for every grid point and seed, each validated like a file."""
    if scenario.live is None:
        raise SweepError(f"{scenario.source}: has no [live] section")
    out = []
    for point, sc in zip(grid.points(), point_scenarios(scenario, grid, scenario.run.seeds), strict=True):
        for s in range(seeds):
            try:
                sc = read_live(sc)
                one = (
                    sc
                    if s == 0
                    else read_live(
                        parse_scenario(
                            sc.text,
                            file=sc.source or "<scenario>",
                            base=Path(sc.base) if sc.base else None,
                            overrides=(*sc.overrides, f"live.seed={sc.live.seed + s}"),
                        )
                    )
                )
            except ScenarioError as e:
                raise SweepError(str(e)) from None
            out.append((point, s, one))
    return out


def _load_key(sc: Scenario) -> tuple:
    """What decides which backends a point needs: points that agree share one load."""
    live = sc.live
    return (
        live.distinct_models,
        live.embedding_model,
        live.n_ctx,
        live.threads,
        live.chat,
        live.chat_models,
        live.batch_size(sc.arrays.n_nodes - len(sc.anchors)),
    )


def rows_of(point: dict, seed: int, summary: dict) -> list[dict]:
    """One row per decoding of a finished point: the measures the sweep compares."""
    rows = []
    for row in summary["table"]:
        # The couplings of the peer model (DeGroot with the anchor) of the run's fit (live.fit), and
        # the chosen model's R^2 on the mean distance to the anchor, run from round 0.
        fit = (summary.get("fit") or {}).get(row["decoding"]) or {}
        peer = (fit.get("models") or {}).get("peer")
        peer = None if peer is None or "refused" in peer else peer
        interval = (peer.get("intervals") or {}).get("anchor_coupling") if peer else None
        rows.append(
            {
                **point,
                "seed": seed,
                "decoding": row["decoding"],
                # What a run without an anchor, a rule or probes does not measure is None here.
                "mean_compliance": row.get("mean_compliance"),
                "final_jaccard_to_anchor": row.get("final_jaccard_to_anchor"),
                "initial_vendi_score": row["initial_vendi_score"],
                "final_vendi_score": row["final_vendi_score"],
                "final_embedding_distance": row.get("final_embedding_distance"),
                "final_probe": row.get("final_probe"),
                "final_within_discussion_probe_gap": row.get("final_within_discussion_probe_gap"),
                "anchor_coupling": peer["params"]["anchor_coupling"] if peer else None,
                "anchor_coupling_lo": interval[0] if interval else None,
                "anchor_coupling_hi": interval[1] if interval else None,
                "peer_coupling": peer["params"]["peer_coupling"] if peer else None,
                "theory_model": (fit.get("theory") or {}).get("model"),
                "theory_r2_mean": (fit.get("theory") or {}).get("r2_mean"),
                "heldout_skill_vs_persistence": (fit.get("best_heldout") or {}).get("skill_vs_persistence"),
                "tokens_per_second": row["tokens_per_second"],
            }
        )
    return rows


def sweep_live(
    scenario: Scenario,
    grid: Grid,
    out: str | Path,
    *,
    seeds: int = 1,
    resume: bool = False,
    backend=None,
    say: Callable[[str], None] = print,
    formats: tuple[str, ...] = ("png", "pdf"),
) -> LiveSweep:
    """Run every grid point and seed of ``scenario``'s ``[live]`` section into ``out`` and tabulate them.

    ``backend`` (a backend or a ``Population``, as for ``run_live``) serves every point;
    by default llama.cpp, one load per distinct set of model files and context settings.

    Raises
    ------
    SweepError
        For a grid key or value the scenario refuses (one line naming the key).
    LiveError, ModelError
        As ``run_live``; every finished point stays on disk.
    """
    from hivemind.live.backends import load_population
    from hivemind.live.run import run_live

    scenario = read_live(scenario)
    out = Path(out)
    points = live_points(scenario, grid, seeds)
    loaded: dict[tuple, object] = {}
    rows = []
    try:
        for k, (point, s, sc) in enumerate(points):
            where = out / point_name(grid.keys, point) / f"seed-{s}"
            say(f"point {k + 1}/{len(points)}: {point_name(grid.keys, point)}, seed {s} -> {where}")
            if backend is not None:
                pop = backend
            else:
                key = _load_key(sc)
                if key not in loaded:
                    for old in loaded.values():  # one set of models in memory at a time
                        old.close()
                    loaded.clear()
                    loaded[key] = load_population(sc, say)[0]
                pop = loaded[key]
            again = resume and (where / TRANSCRIPT).is_file()
            result = run_live(sc, where, resume=again, backend=pop, say=lambda line: say("  " + line), formats=formats)
            rows += rows_of(dict(zip(grid.keys, point, strict=True)), s, result.summary)
    finally:
        for pop in loaded.values():
            pop.close()
    table = pd.DataFrame(rows)
    save_csv(table, out / "live_sweep.csv")
    files = [out / "live_sweep.csv"]
    save_json({"grid": grid.to_dict(), "seeds": seeds, "rows": rows, "versions": versions()}, out / "live_sweep.json")
    files.append(out / "live_sweep.json")
    if formats:
        from hivemind.plot import live_sweep_figure, save_figure

        files += save_figure(live_sweep_figure(table, grid.keys[0]), out / "live_sweep", formats)
    return LiveSweep(out, grid, seeds, table, files)


def format_sweep(table: pd.DataFrame, keys: tuple[str, ...]) -> str:
    """Mean and spread over seeds of each measure, per grid point and decoding."""
    lines = [
        f"{' '.join(keys):<24}{'decoding':<12}{'compliance':>14}{'Jaccard':>14}{'Vendi':>14}{'kappa (peer)':>16}{'seeds':>7}"
    ]
    for (point, decoding), g in table.groupby([*keys, "decoding"] if len(keys) > 1 else [keys[0], "decoding"], sort=False):
        label = " ".join(str(v) for v in (point if isinstance(point, tuple) else (point,)))

        def cell(col, g=g):
            v = pd.to_numeric(g[col], errors="coerce").dropna()
            if v.empty:
                return "-"
            return f"{v.mean():.3f}" + (f"±{v.std(ddof=1):.3f}" if len(v) > 1 else "")

        lines.append(
            f"{label:<24}{decoding:<12}{cell('mean_compliance'):>14}{cell('final_jaccard_to_anchor'):>14}"
            f"{cell('final_vendi_score'):>14}{cell('anchor_coupling'):>16}{len(g):>7}"
        )
    return "\n".join(lines)
