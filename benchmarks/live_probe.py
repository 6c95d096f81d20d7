"""What the opinion probe costs a round, in process: the same rounds with and without it.

    python benchmarks/live_probe.py [--repeats 3] [--out benchmarks/results]

The rounds of a wheel of 8 and of 32 Gemma 3 270M agents around the quickstart anchor
(greedy, batched, 3 rounds after the opening) are run through ``hivemind.live.converse``
twice per repeat, alternating: without probes, and with every message followed by the
probe's question in the same batch (its KV cache reused, ``live.probe``). The check set
that chooses the form is run once before, outside the timing (it runs once per model, not
per round). Reported: the median wall time of the rounds of each, and the ratio; the goal is
at most 1.25 (probes add at most 25 % to a round).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from hivemind import load_scenario
from hivemind.io.results import versions
from hivemind.live.backends import LlamaBackend, Population
from hivemind.live.conversation import Transcript, converse, header_for
from hivemind.live.embedders import minilm
from hivemind.live.model import resolve_model
from hivemind.live.run import check_probes

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "live_quickstart.toml"
GOAL = 1.25


def overrides(agents: int) -> list[str]:
    return [
        f"graph.n={agents + 1}",
        'live.decoding="greedy"',
        "live.rounds=3",
        "live.fit=false",
        "live.probe=true",
        'live.probe_form="own_yes_no"',
        f"live.initial_texts=[{', '.join(repr(f'Opinion {k}: we should cross the hills.') for k in range(agents))}]".replace(
            "'", '"'
        ),
    ]


def rounds_seconds(scenario, pop, asking) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Transcript.create(Path(tmp) / "transcript.jsonl", header_for(scenario, pop, "gemma3"))
        t0 = time.perf_counter()
        converse(scenario, pop, transcript, say=lambda s: None, probes=asking)
        seconds = time.perf_counter() - t0
        transcript.close()
    return seconds


def measure(agents: int, repeats: int, embedder) -> dict:
    scenario = load_scenario(SCENARIO, overrides(agents))
    spec = scenario.live
    model = LlamaBackend(resolve_model(spec.model, SCENARIO.parent, lambda s: None), spec.n_ctx, spec.threads, batch=agents)
    pop = Population({spec.model: model}, embedder)
    try:
        _, asking = check_probes(scenario, pop, say=lambda s: None)
        rounds_seconds(scenario, pop, None)  # warm: the batch context and the kernels
        plain, probed = [], []
        for _ in range(repeats):
            plain.append(rounds_seconds(scenario, pop, None))
            probed.append(rounds_seconds(scenario, pop, asking))
    finally:
        model.close()
    a, b = statistics.median(plain), statistics.median(probed)
    return {
        "agents": agents,
        "rounds": spec.rounds + 1,
        "without_probe_seconds": plain,
        "with_probe_seconds": probed,
        "ratio": b / a,
        "goal": GOAL,
        "met": b / a <= GOAL,
    }


def sentence(doc: dict) -> str:
    """The README's line: the ratio at each size against the goal."""
    parts = [
        f"{r['agents']} agents: ×{r['ratio']:.2f} ({statistics.median(r['without_probe_seconds']):.1f} s → "
        f"{statistics.median(r['with_probe_seconds']):.1f} s for {r['rounds']} rounds)"
        for r in doc["results"]
    ]
    met = all(r["met"] for r in doc["results"])
    return (
        f"Rounds with probes against the same rounds without, Gemma 3 270M batched on 2 cores: {'; '.join(parts)}; "
        f"the goal of at most ×{GOAL} is {'met' if met else 'not met'}.\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    embedder = minilm(2, lambda s: None)
    results = []
    for agents in (8, 32):
        r = measure(agents, args.repeats, embedder)
        results.append(r)
        print(
            f"{agents} agents, {r['rounds']} rounds: without probes {statistics.median(r['without_probe_seconds']):.2f} s, "
            f"with {statistics.median(r['with_probe_seconds']):.2f} s: x{r['ratio']:.3f} (goal <= {GOAL})"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"results": results, "versions": versions()}
    (out / "live_probe.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(sentence(doc), end="")


if __name__ == "__main__":
    main()
