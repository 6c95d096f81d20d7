"""The server backend against in-process decoding: tokens per second on one machine.

    python benchmarks/live_server.py [SCENARIO] [--repeats 3] [--out benchmarks/results]

The rounds of ``SCENARIO`` (greedy; ``live.chat = "none"``, so both paths send the same text)
run three ways through ``run_live`` with the same embedder: in-process llama.cpp one message
after another (``live.batch = false``), and through llama-cpp-python's OpenAI-compatible
server (``python -m llama_cpp.server``, started here on 127.0.0.1 with the same file and
threads) with one request in flight and with the round's requests in flight together. That
server decodes one request at a time, so most of either path's time is the same llama.cpp
compute; the ratio is what HTTP, JSON and the server's own handling add. Goal: the server
within 1.3x of in-process sequential decoding. Tokens per second = completion tokens / the
time of the rounds, less the time spent embedding (a measurement, the same in every path).
The three paths' runs are interleaved, so that the machine's drift in speed falls on all
of them alike. Results go to ``OUT/live_server.json``.

``--spread 1,2,4`` measures instead one round of ``--agents`` (32) agents spread over 1, 2 and 4
local servers on this machine (each with the machine's threads shared out, at least one; the
round's requests in flight together), against the same round decoded in-process as one batch:
what several endpoints give when they share one machine's cores. Results go to
``OUT/live_spread.json``.
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
from hivemind.live.backends.local_server import LlamaServer
from hivemind.live.backends.server import ServerBackend
from hivemind.live.model import resolve_model
from hivemind.live.run import run_live

GOAL = 1.3


class Timed:
    """An embedder that counts the seconds spent in it."""

    def __init__(self, backend):
        self.backend, self.seconds = backend, 0.0
        self.name, self.model_sha256, self.path = backend.name, backend.model_sha256, getattr(backend, "path", "")

    def embed(self, text):
        t0 = time.perf_counter()
        try:
            return self.backend.embed(text)
        finally:
            self.seconds += time.perf_counter() - t0

    def close(self):
        pass


def one_run(scenario, generator, embedder) -> tuple[float, int]:
    """(seconds of the rounds less embedding, completion tokens) of one run."""
    timed = Timed(embedder)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = run_live(
            scenario,
            out,
            backend=Population(dict.fromkeys(scenario.live.distinct_models, generator), timed),
            say=lambda s: None,
            formats=(),
        )
        wall = time.perf_counter() - t0
    tokens = sum(row.metrics["completion_tokens"] for t in res.trajectories for row in t.rows)
    return wall - timed.seconds, tokens


def texts(agents: int) -> str:
    places = ["east", "west", "north", "south"]
    return json.dumps([f"Agent {k} thinks we should go {places[k % 4]}." for k in range(agents)])


def spread(scenario_path: str, agents: int, counts: list[int], out: Path) -> int:
    """One round of ``agents`` agents on 1, 2, 4 ... local servers, and in-process as one batch."""
    import os

    from hivemind.live import embedders

    common = ['live.decoding="greedy"', 'live.chat="none"', "live.fit=false", "live.rounds=1", f"graph.n={agents + 1}"]
    common += [f"live.initial_texts={texts(agents)}"]
    local = load_scenario(scenario_path, common)
    spec = local.live
    model = resolve_model(spec.model, Path(scenario_path).parent)
    cores = os.cpu_count() or 1
    embedder = embedders.minilm(spec.threads, lambda s: None)
    llama = LlamaBackend(model, spec.n_ctx, spec.threads, spec.chat, batch=spec.batch_size(agents))
    seconds, tokens = one_run(local, llama, embedder)
    llama.close()
    rows = [{"servers": 0, "label": "in-process, one batch", "seconds": seconds, "completion_tokens": tokens}]
    print(f"{agents} agents, one round, greedy: in-process as one batch {seconds:.2f} s ({tokens / seconds:.1f} tokens/s)")
    for n in counts:
        threads = max(1, cores // n)
        log = Path(tempfile.gettempdir()) / "hivemind-bench-spread.log"
        servers = [LlamaServer(model, "bench", log=log, threads=threads) for _ in range(n)]
        try:
            for server in servers:
                server.start()
            urls = json.dumps([server.url for server in servers])
            sc = load_scenario(
                scenario_path,
                [*common, 'live.backend="openai"', f"live.endpoints={urls}", 'live.model="bench"', "live.concurrency=8"],
            )
            backend = ServerBackend(sc.live)
            backend.check(["bench"])
            seconds, tokens = one_run(sc, backend, embedder)
            backend.close()
        finally:
            for server in servers:
                server.stop()
        rows.append({"servers": n, "threads_each": threads, "seconds": seconds, "completion_tokens": tokens})
        print(
            f"  {n} server{'s' if n > 1 else ''} of {threads} thread{'s' if threads > 1 else ''}: {seconds:.2f} s "
            f"({tokens / seconds:.1f} tokens/s), x{seconds / rows[0]['seconds']:.2f} the in-process batch"
        )
    result = {"scenario": local.name, "model": str(model), "agents": agents, "cores": cores, "rows": rows}
    result["versions"] = versions()
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_spread.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'live_spread.json'}")
    return 0


def spread_sentence(d: dict) -> str:
    """The generated block ``live_spread`` of the server guide."""
    base = d["rows"][0]
    parts = [
        f"{r['servers']} server{'s' if r['servers'] > 1 else ''} of {r['threads_each']} thread"
        f"{'s' if r['threads_each'] > 1 else ''}: {r['seconds']:.1f} s (×{r['seconds'] / base['seconds']:.2f})"
        for r in d["rows"][1:]
    ]
    return (
        f"One round of {d['agents']} Gemma agents on this {d['cores']}-core machine: in process as one batch "
        f"{base['seconds']:.1f} s; " + "; ".join(parts) + ".\n"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="?", default="scenarios/live_quickstart.toml")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--spread", default=None, help="server counts, e.g. 1,2,4: only the spread measurement")
    p.add_argument("--agents", type=int, default=32, help="the spread measurement's agents")
    args = p.parse_args(argv)
    if args.spread:
        return spread(args.scenario, args.agents, [int(n) for n in args.spread.split(",")], Path(args.out))
    common = ['live.decoding="greedy"', 'live.chat="none"', "live.fit=false"]
    local = load_scenario(args.scenario, [*common, "live.batch=false"])
    spec = local.live
    model = resolve_model(spec.model, Path(args.scenario).parent)
    from hivemind.live import embedders

    embedder = embedders.minilm(spec.threads, lambda s: None)
    server = LlamaServer(model, "bench", log=Path(tempfile.gettempdir()) / "hivemind-bench-server.log", threads=spec.threads)
    server.start()
    rows = {"server, 1 in flight": [], "server, a round in flight": [], "in-process, sequential": []}
    try:
        argv_server = [*common, 'live.backend="openai"', f'live.endpoints=["{server.url}"]', 'live.model="bench"']
        paths = {}
        for label, concurrency in (("server, 1 in flight", 1), ("server, a round in flight", 64)):
            sc = load_scenario(args.scenario, [*argv_server, f"live.concurrency={concurrency}"])
            backend = ServerBackend(sc.live)
            backend.check(["bench"])
            paths[label] = (sc, backend)
        llama = LlamaBackend(model, spec.n_ctx, spec.threads, spec.chat, batch=0)
        paths["in-process, sequential"] = (local, llama)
        # Interleaved, so that this VM's drift in speed falls on every path alike.
        for _ in range(args.repeats):
            for label, (sc, backend) in paths.items():
                rows[label].append(one_run(sc, backend, embedder))
        llama.close()
    finally:
        server.stop()
    result = {"scenario": local.name, "model": str(model), "threads": spec.threads, "repeats": args.repeats, "goal": GOAL}
    for label, runs in rows.items():
        rate = statistics.median(tok / s for s, tok in runs)
        result[label] = {"tokens_per_second": rate, "runs": [{"seconds": s, "completion_tokens": tok} for s, tok in runs]}
    base = result["in-process, sequential"]["tokens_per_second"]
    agents = local.arrays.n_nodes - 1
    print(f"{local.name}: {agents} agents, {spec.rounds} rounds, greedy, {spec.threads} threads; median of {args.repeats}")
    for label in rows:
        rate = result[label]["tokens_per_second"]
        result[label]["slowdown_vs_in_process"] = base / rate
        print(f"  {label:<28}{rate:8.1f} tokens/s   {base / rate:5.2f}x the in-process time per token")
    worst = max(result[k]["slowdown_vs_in_process"] for k in rows if k.startswith("server"))
    print(f"server within {GOAL}x of in-process sequential decoding: {'yes' if worst <= GOAL else 'no'} ({worst:.2f}x)")
    result["versions"] = versions()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_server.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
