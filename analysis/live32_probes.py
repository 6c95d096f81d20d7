"""Do the probes and the embedder agree on the direction? The 32-agent anchored population, probed.

Runs ``analysis/live32.toml`` (32 Gemma 3 270M agents on a wheel around a fixed anchor) for
8 rounds with every agent probed after every message (``live.probe``, the form chosen on the
check set) and each agent given a stance on -2..2 toward the anchor's message (drawn with
one seeded generator): greedy once and stochastic (T = 0.8) with 4 seeds. Per run, the two
instruments' verdicts on the direction: the embedder's mean distance to the anchor (down is
toward it) and the mean probe (up is toward it), first round against last, each with a 90 %
interval over agents; and per agent whether its two changes have the same sign. Where they
disagree most, the agent's first and last messages are shown.

Writes figures/live32_probes.json; the runs stay in runs/analysis_live32_probes/.

    .venv/bin/python analysis/live32_probes.py      (about 15 minutes on 2 cores)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hivemind import load_scenario
from hivemind.live.run import run_live

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "analysis" / "live32.toml"
OUT = ROOT / "runs" / "analysis_live32_probes"
ROUNDS = 8
SEEDS = 4
SEED = 0


def stances() -> list[int]:
    return np.random.default_rng(SEED).integers(-2, 3, size=32).tolist()


def verdict(change: float, iv: list[float], toward_is_positive: bool) -> str:
    """toward / away / unclear (the interval holds 0)."""
    if iv[0] <= 0 <= iv[1]:
        return "unclear"
    return "toward" if (change > 0) == toward_is_positive else "away"


def one_run(label: str, overrides: list[str]) -> dict:
    from _common import mean_interval  # the analysis folder's helper: on the path when run as a script

    out = OUT / label
    common = [f"live.rounds={ROUNDS}", "live.probe=true", f"live.stances={stances()}", "live.fit=false"]
    scenario = load_scenario(SCENARIO, [*common, *overrides])
    again = (out / "transcript.jsonl").is_file()
    res = run_live(scenario, out, resume=again, say=lambda s: None, formats=("png",))
    ds = res.dataset.isel(decoding=0)
    rng = np.random.default_rng(SEED)
    distance = ds.distance_to_anchor.values  # (round, agent)
    probe = ds.probe.values
    d_change, p_change = distance[-1] - distance[0], probe[-1] - probe[0]
    d_iv, p_iv = mean_interval(d_change, rng), mean_interval(p_change, rng)
    same = np.sign(-d_change) == np.sign(p_change)
    # The agent on which the two disagree most: the embedder says toward, the probe away, or the reverse.
    score = np.where(same, -np.inf, np.abs(d_change) / np.std(d_change) + np.abs(p_change) / np.std(p_change))
    example = None
    if np.isfinite(score).any():
        k = int(np.argmax(score))
        texts = res.trajectories[0].texts
        example = {
            "agent": str(ds.agent.values[k]),
            "stance": stances()[k],
            "first": texts[0][k],
            "last": texts[-1][k],
            "distance": [float(distance[0, k]), float(distance[-1, k])],
            "probe": [float(probe[0, k]), float(probe[-1, k])],
        }
    embedder = verdict(float(d_change.mean()), d_iv, toward_is_positive=False)
    prober = verdict(float(p_change.mean()), p_iv, toward_is_positive=True)
    return {
        "run": label,
        "probe_form": res.summary["probes"]["default"]["form"],
        "probe_reliable": res.summary["probes"]["default"]["reliable"],
        "distance": [float(distance[0].mean()), float(distance[-1].mean())],
        "distance_change_interval": d_iv,
        "probe": [float(probe[0].mean()), float(probe[-1].mean())],
        "probe_change_interval": p_iv,
        "embedder_says": embedder,
        "probe_says": prober,
        "agree": embedder == prober,
        "agents_agreeing": float(same.mean()),
        "agent_correlation": float(np.corrcoef(-d_change, p_change)[0, 1]),
        "stance_probe_correlation_round0": float(np.corrcoef(stances(), probe[0])[0, 1]),
        "example": example,
    }


def main() -> None:
    from _common import write_numbers  # the analysis folder's helper: on the path when run as a script

    runs = [one_run("greedy", ['live.decoding="greedy"'])]
    for s in range(SEEDS):
        runs.append(one_run(f"stochastic_{s}", ['live.decoding="stochastic"', "live.temperature=0.8", f"live.seed={s}"]))
    for r in runs:
        print(
            f"{r['run']}: embedder {r['distance'][0]:.3f} -> {r['distance'][1]:.3f} rad ({r['embedder_says']}), "
            f"probe {r['probe'][0]:+.2f} -> {r['probe'][1]:+.2f} ({r['probe_says']}); agents agreeing "
            f"{r['agents_agreeing']:.0%}, correlation {r['agent_correlation']:+.2f}"
        )
        if r["example"] and not r["agree"]:
            e = r["example"]
            print(f"   agent {e['agent']} (stance {e['stance']}): {e['first']!r} -> {e['last']!r}")
    write_numbers("live32_probes", {"rounds": ROUNDS, "stances": stances(), "runs": runs})


def table(doc: dict) -> str:
    """analysis/README's table: per run, each instrument's verdict on the direction."""
    lines = [
        "| run | embedding distance, round 0 → last | its verdict | probe, round 0 → last | its verdict | agents agreeing |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        lines.append(
            f"| {r['run']} | {r['distance'][0]:.3f} → {r['distance'][1]:.3f} | {r['embedder_says']} | "
            f"{r['probe'][0]:+.2f} → {r['probe'][1]:+.2f} | {r['probe_says']} | {r['agents_agreeing']:.0%} |"
        )
    lines.append("")
    lines.append("Where the two disagree most, per run (the agent's first and last messages):")
    lines.append("")
    for r in doc["runs"]:
        e = r["example"]
        if e is None:
            continue
        lines.append(
            f"- {r['run']}, agent {e['agent']} (stance {e['stance']:+d}): “{e['first']}” → “{e['last']}” "
            f"(distance {e['distance'][0]:.3f} → {e['distance'][1]:.3f} rad, probe {e['probe'][0]:+.2f} → {e['probe'][1]:+.2f})"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
