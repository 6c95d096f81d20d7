"""Live-mode speed: orchestration overhead against bare llama-cpp-python, and shared-prefix reuse.

    python benchmarks/live.py [SCENARIO] [--repeats 3] [--out benchmarks/results]

1. **Overhead.** The rounds of ``SCENARIO`` (greedy; round 0 and the embeddings
   excluded, since embedding is a measurement, not orchestration) run through
   ``hivemind.live``. Every prompt it sends is recorded, then replayed on a bare
   ``llama_cpp.Llama`` with ``create_completion(prompt_tokens)`` and the same
   settings, which is what a user would write by hand. Both must produce the same
   texts. Overhead = hivemind's time / bare time - 1 (goal: under 10%).
2. **Prefix reuse.** The same recorded prompts through ``LlamaBackend`` with the
   shared prefix kept in the KV cache, against ``reuse_prefix=False`` (the prefix
   evaluated again for every message), at the scenario's prefix and at a prefix of
   several hundred tokens (a long anchor message).
3. **Batched decoding.** The prompts of two recorded rounds with 8 and with 32 agents
   (a wheel graph), decoded one agent after another (``live.batch = false``) and as one
   llama.cpp batch per round (``live.batch = true``): population completion tokens per
   second, and how much of the batched time goes to the prompts (prefix and suffixes)
   rather than to generating. Goals: >= 2x at 8 agents, >= 2.5x at 32.
4. **Memory.** Peak resident memory of a whole ``hivemind live`` process (one round,
   greedy) with 8 and with 32 agents on a wheel graph, batched and sequential.

Timings are the median of ``--repeats`` runs; results go to ``OUT/live.json``.

5. **Scale** (``--scale``, about 50 minutes, ``OUT/live_scale.json``): one round of 8, 64, 256
   and 1,024 agents, Gemma 3 270M and SmolLM2 135M, each in a process of its own, against bare
   llama.cpp (its low-level API, nothing of hivemind) decoding the same batches for exactly the
   completion lengths hivemind's round produced; the levers measured on the bare decode; what
   keeping prompts between rounds could save; the probe's cost at 32 and 256 agents. Run it
   with nothing else on the machine: a round's time is the measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hivemind import load_scenario
from hivemind.io.results import versions
from hivemind.live.backends import LlamaBackend, quiet_stderr
from hivemind.live.conversation import Transcript, converse, header_for
from hivemind.live.model import resolve_model

LONG_ANCHOR = " ".join(
    f"Article {k}: every member of the group follows the river, speaks of the river, and agrees with the leader."
    for k in range(1, 21)
)


class Recording(LlamaBackend):
    """The real backend, remembering every prompt and timing every embedding."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list = []
        self.embed_seconds = 0.0

    def generate(self, prefix, suffix, sampling, seed, probe=None):
        gen = super().generate(prefix, suffix, sampling, seed, probe)
        self.calls.append((list(prefix), list(suffix), sampling, seed, gen.text, gen.completion_tokens))
        return gen

    def embed(self, text):
        t0 = time.perf_counter()
        try:
            return super().embed(text)
        finally:
            self.embed_seconds += time.perf_counter() - t0


def live_rounds(scenario, model: Path) -> tuple[float, Recording]:
    """Seconds hivemind spends on the rounds, embeddings excluded, and the recording backend."""
    live = scenario.live
    backend = Recording(model, live.n_ctx, live.threads, live.chat)
    backend.embed(live.anchor_text)  # load the embedding context outside the timing
    backend.embed_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Transcript.create(Path(tmp) / "t.jsonl", header_for(scenario, backend, str(model)))
        t0 = time.perf_counter()
        converse(scenario, backend, transcript, say=lambda s: None)
        seconds = time.perf_counter() - t0 - backend.embed_seconds
        transcript.close()
    backend.close()
    return seconds, backend


def bare(model: Path, live, calls) -> tuple[float, list[str], int]:
    """The same prompts on a plain llama_cpp.Llama, as a user would call it, generating as many
    tokens per message as hivemind did (no stop strings): the same work, token for token."""
    import llama_cpp

    with quiet_stderr():
        llm = llama_cpp.Llama(
            model_path=str(model), n_ctx=live.n_ctx, n_threads=live.threads, n_threads_batch=live.threads, verbose=False
        )
    texts, tokens = [], 0
    t0 = time.perf_counter()
    for prefix, suffix, _, seed, _, n in calls:
        out = llm.create_completion(
            prefix + suffix, max_tokens=max(n, 1), temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0, seed=seed
        )
        texts.append(out["choices"][0]["text"].strip())
        tokens += out["usage"]["completion_tokens"]
    seconds = time.perf_counter() - t0
    llm.close()
    return seconds, texts, tokens


def replay(model: Path, live, calls, reuse: bool) -> tuple[float, float, list[str]]:
    """(seconds, prompt tokens evaluated per message, texts) through LlamaBackend."""
    backend = LlamaBackend(model, live.n_ctx, live.threads, live.chat, reuse_prefix=reuse)
    texts = []
    t0 = time.perf_counter()
    for prefix, suffix, sampling, seed, _, _ in calls:
        texts.append(backend.generate(prefix, suffix, sampling, seed).text)
    seconds = time.perf_counter() - t0
    evaluated = (backend.prefix_evaluations * len(calls[0][0]) + sum(len(c[1]) for c in calls)) / len(calls)
    backend.close()
    return seconds, evaluated, texts


CHILD = """
import sys
from pathlib import Path
from hivemind.cli import main
code = main(sys.argv[1:])
print(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
sys.exit(code)
"""


def agent_texts(agents: int) -> str:
    places = ["east", "west", "north", "south"]
    ways = ["road", "hill", "lake"]
    return "[" + ",".join(f'"Agent {k} thinks we should go {places[k % 4]} by the {ways[k % 3]}."' for k in range(agents)) + "]"


def batched_race(scenario_path: str, model: Path, agents: int, repeats: int) -> dict:
    """Two recorded rounds of ``agents`` agents, decoded sequentially and batched (one batch per round)."""
    over = [f"graph.n={agents + 1}", "live.rounds=2", 'live.decoding="greedy"', "live.batch=false"]
    sc = load_scenario(scenario_path, [*over, f"live.initial_texts={agent_texts(agents)}"])
    live = sc.live
    _, rec = live_rounds(sc, model)
    rounds = [rec.calls[k : k + agents] for k in range(0, len(rec.calls), agents)]

    def sequential():
        backend = LlamaBackend(model, live.n_ctx, live.threads, live.chat)
        t0 = time.perf_counter()
        tokens = sum(backend.generate(p, s, sm, seed).completion_tokens for calls in rounds for p, s, sm, seed, _, _ in calls)
        seconds = time.perf_counter() - t0
        backend.close()
        return seconds, tokens, 0.0

    def batched():
        backend = LlamaBackend(model, live.n_ctx, live.threads, live.chat, batch=agents)
        backend.generate_batch(rounds[0][0][0], [rounds[0][0][1]], [rounds[0][0][2]], [0])  # make the context
        backend._decoder.prompt_seconds = 0.0
        backend._decoder.steps = []
        t0 = time.perf_counter()
        tokens = 0
        for calls in rounds:
            gens = backend.generate_batch(calls[0][0], [c[1] for c in calls], [c[2] for c in calls], [c[3] for c in calls])
            tokens += sum(g.completion_tokens for g in gens)
        seconds = time.perf_counter() - t0
        prompt, steps = backend._decoder.prompt_seconds, backend._decoder.steps
        backend.close()
        return seconds, tokens, prompt, steps

    # Weights read per token, for the FLOP accounting: a prompt token goes through the blocks, a generated
    # token also through the output layer (Gemma ties it to the token embedding, a lookup for the input).
    import llama_cpp

    probe = LlamaBackend(model, live.n_ctx, live.threads, live.chat)
    n_params = llama_cpp.llama_model_n_params(probe.llm._model.model)
    lookup = probe.llm.n_vocab() * probe.llm.n_embd()
    probe.close()

    t_seq, (_, tok_seq, _) = median_of(repeats, sequential)
    t_bat, (_, tok_bat, prompt, steps) = median_of(repeats, batched)
    ratio = (tok_bat / t_bat) / (tok_seq / t_seq)
    goal = 2.0 if agents <= 8 else 2.5
    prompt_tokens = sum(len(c[1]) for calls in rounds for c in calls) + sum(len(calls[0][0]) for calls in rounds)
    # Matrix FLOPs (attention apart, small at these lengths): 2 per weight per token.
    prompt_rate = 2 * (n_params - lookup) * prompt_tokens / prompt / 1e9
    generation_rate = 2 * n_params * tok_bat / (t_bat - prompt) / 1e9
    # If the generated tokens ran at the best rate measured here (the prompt's 512-token micro-batches, or
    # generation itself with 32 sequences), and the prompts cost no less when decoded one agent at a time:
    # the most batching could give on this machine.
    peak = max(prompt_rate, generation_rate)
    ceiling = t_seq / (prompt + 2 * n_params * tok_bat / (peak * 1e9))
    # The longest message of a round sets its number of steps: once most sequences have stopped, a step
    # decodes a few tokens at nearly the cost of a full one.
    occupancy = sum(n for n, _ in steps) / (len(steps) * agents)
    tail = [t for n, t in steps if n <= agents // 4]
    print(
        f"batched decoding, {agents} agents, {len(rounds)} rounds: {tok_seq / t_seq:.1f} tokens/s one after another, "
        f"{tok_bat / t_bat:.1f} batched: {ratio:.2f}x (goal {goal}x); batched time {t_bat:.2f} s, of which "
        f"{prompt:.2f} s ({prompt / t_bat:.0%}) on {prompt_tokens} prompt tokens at {prompt_rate:.0f} GFLOP/s "
        f"and {t_bat - prompt:.2f} s on {tok_bat} generated tokens at {generation_rate:.0f} GFLOP/s: "
        f"compute-bound, at most {ceiling:.2f}x here; {len(steps)} generation steps, {occupancy:.0%} full on average, "
        f"{len(tail)} of them with a quarter of the sequences or fewer, taking {sum(tail):.2f} s"
    )
    return {
        "agents": agents,
        "rounds": len(rounds),
        "sequential_seconds": t_seq,
        "sequential_completion_tokens": tok_seq,
        "batched_seconds": t_bat,
        "batched_completion_tokens": tok_bat,
        "sequential_tokens_per_second": tok_seq / t_seq,
        "batched_tokens_per_second": tok_bat / t_bat,
        "speedup": ratio,
        "goal": goal,
        "batched_prompt_seconds": prompt,
        "prompt_tokens": prompt_tokens,
        "prompt_gflops_per_second": prompt_rate,
        "generation_gflops_per_second": generation_rate,
        "compute_bound_ceiling": ceiling,
        "generation_steps": len(steps),
        "generation_step_occupancy": occupancy,
        "tail_steps": len(tail),
        "tail_seconds": sum(tail),
    }


def peak_memory_mb(scenario_path: str, agents: int, batch: bool = True) -> float:
    """Peak RSS (VmHWM, which counts from the child's exec) of a ``hivemind live`` run with ``agents`` agents."""
    texts = "[" + ",".join(f'"Agent {k} thinks we should go east."' for k in range(agents)) + "]"
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-c", CHILD, "live", scenario_path, "--out", tmp, "--force", "--quiet"]
        argv += ["--formats", "png", "--set", f"graph.n={agents + 1}", "--set", "live.rounds=1"]
        argv += ["--set", 'live.decoding="greedy"', "--set", f"live.initial_texts={texts}"]
        argv += ["--set", f"live.batch={'true' if batch else 'false'}", "--set", "live.fit=false"]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the {agents}-agent run failed: {out.stderr.strip()[-300:]}")
    return int(out.stdout.split()[-1]) / 1024


# ---------------------------------------------------------------------------
# 5. Scale: a round of 8 to 1 024 agents against bare llama.cpp's batched decode of the same work

SCALE_AGENTS = (8, 64, 256, 1024)
SCALE_MODELS = ("default", "smollm2")


class Batches(LlamaBackend):
    """The real backend, remembering every batch it decodes: (prefix, suffixes, completion tokens)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list = []

    def generate_batch(self, prefix, suffixes, samplings, seeds, probe=None):
        gens = super().generate_batch(prefix, suffixes, samplings, seeds, probe)
        self.batches.append((list(prefix), [list(s) for s in suffixes], [g.completion_tokens for g in gens]))
        return gens


def peak_rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


def round_child(scenario_path: str, model_name: str, agents: int, rounds: int, probe: bool, out: Path) -> None:
    """In a child process: the rounds of ``agents`` agents (round 0's texts given, greedy), timed per
    round without the embeddings (a hashed bag of words stands in for the embedder, so that the
    time is the language model's and hivemind's); writes the batches and timings to ``out``. With
    ``probe``, every message is probed with the form the check set chooses (before round 0)."""
    from hivemind.live.backends import FakeBackend, Population
    from hivemind.live.run import check_probes

    over = [f"graph.n={agents + 1}", f"live.rounds={rounds}", 'live.decoding="greedy"', f'live.model="{model_name}"']
    over += ["live.probe=true"] if probe else []
    sc = load_scenario(scenario_path, [*over, f"live.initial_texts={agent_texts(agents)}"])
    live = sc.live
    model = resolve_model(live.model, Path(scenario_path).parent)
    backend = Batches(model, live.n_ctx, live.threads, live.chat, batch=live.batch_size(agents))
    backend._decoder_of()  # the context is made before the timing, as the ceiling's is
    pop = Population({m: backend for m in live.distinct_models}, FakeBackend())
    asking = check_probes(sc, pop, say=lambda s: None)[1] if probe else {}
    marks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Transcript.create(Path(tmp) / "t.jsonl", header_for(sc, backend, str(model)))
        converse(sc, pop, transcript, say=lambda s: marks.append(time.perf_counter()), probes=asking)
        records = transcript.records
        transcript.close()
    decoder = backend._decoder
    result = {
        "round_seconds": [b - a for a, b in zip(marks, marks[1:], strict=False)],
        "batches": backend.batches,
        "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in records if r["round"] >= 1),
        "completion_tokens": sum(r.get("completion_tokens", 0) for r in records if r["round"] >= 1),
        "batch": live.batch_size(agents),
        "n_ctx": live.n_ctx,
        "decoder_prompt_seconds": decoder.prompt_seconds,
        "question_tokens": len(next(iter(asking.values())).request.question) if asking else 0,
        # What the decoder evaluated of the prompts: each batch's prefix once, every suffix.
        "evaluated_prompt_tokens": sum(len(p) + sum(len(x) for x in xs) for p, xs, _ in backend.batches),
        "peak_memory_mb": peak_rss_mb(),
    }
    backend.close()
    Path(out).write_text(json.dumps(result))


def ceiling_child(model_path: str, batches: list, n_ctx: int, threads: int, settings: dict, out: Path) -> None:
    """In a child process: bare llama.cpp (its low-level API, nothing of hivemind) decoding the same
    batches: each batch's prefix once, copied to every sequence, the suffixes together, then one
    token per unfinished sequence per decode, until each sequence has as many tokens as it generated
    in hivemind's round (argmax; the work, not the text, is compared). Knowing the lengths, it
    never decodes a sequence's last token, which hivemind must, to see it end."""
    import llama_cpp
    import numpy as np

    with quiet_stderr():
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        model = llama_cpp.llama_model_load_from_file(model_path.encode(), mparams)
        n_seq = max(len(b[1]) for b in batches)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_seq * n_ctx
        params.n_batch = settings.get("n_batch", 512)
        params.n_ubatch = settings.get("n_ubatch", 512)
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = settings.get("unified", False)
        flash = settings.get("flash", True)
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx = llama_cpp.llama_init_from_model(model, params)
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    n_batch = params.n_batch
    batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
    memory = llama_cpp.llama_get_memory(ctx)

    def decode(entries):
        for j, (tok, pos, seq, logits) in enumerate(entries):
            batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.logits[j] = tok, pos, 1, logits
            batch.seq_id[j][0] = seq
        batch.n_tokens = len(entries)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(idx):
        return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, idx), shape=(n_vocab,))))

    # Untimed, as hivemind's round 0 is: the first decode sets up llama.cpp's compute buffers.
    decode([(t, j, 0, False) for j, t in enumerate(batches[0][0][:n_batch])])
    t0 = time.perf_counter()
    for prefix, suffixes, lengths in batches:
        llama_cpp.llama_memory_clear(memory, True)
        p = len(prefix)
        for s in range(0, p, n_batch):
            decode([(t, s + j, 0, False) for j, t in enumerate(prefix[s : s + n_batch])])
        for k in range(1, len(suffixes)):
            llama_cpp.llama_memory_seq_cp(memory, 0, k, -1, -1)
        entries = [(t, p + j, k, j == len(x) - 1) for k, x in enumerate(suffixes) for j, t in enumerate(x)]
        last = [0] * len(suffixes)
        for s in range(0, len(entries), n_batch):
            chunk = entries[s : s + n_batch]
            decode(chunk)
            for idx, (_, _, k, wants) in enumerate(chunk):
                if wants:
                    last[k] = argmax(idx)
        made = [1] * len(suffixes)  # the first token came from the prompt's logits
        while True:
            live = [k for k in range(len(suffixes)) if made[k] < lengths[k]]
            if not live:
                break
            decode([(last[k], p + len(suffixes[k]) + made[k] - 1, k, True) for k in live])
            for idx, k in enumerate(live):
                last[k], made[k] = argmax(idx), made[k] + 1
    seconds = time.perf_counter() - t0
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    Path(out).write_text(json.dumps({"seconds": seconds, "peak_memory_mb": peak_rss_mb()}))


def child(kind: str, *args) -> dict:
    """Run ``round_child`` or ``ceiling_child`` in a fresh process (its own peak memory); its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        spec = Path(tmp) / "args.json"
        spec.write_text(json.dumps([*args, str(out)]))
        here = str(Path(__file__).parent)
        code = f"import json,sys; sys.path.insert(0, {here!r}); import live; live.{kind}_child(*json.load(open({str(spec)!r})))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{kind} child failed: {done.stderr.strip()[-500:]}")
        return json.loads(out.read_text())


def slope(agents, seconds) -> float:
    """The log-log slope of seconds against agents (least squares)."""
    import numpy as np

    return float(np.polyfit(np.log(agents), np.log(seconds), 1)[0])


def probe_cost(scenario_path: str, agents_list, rows: list) -> list:
    """A probed round of Gemma agents against the same round unprobed (from ``rows`` where measured):
    the extra seconds beside what evaluating the question's tokens costs at the round's own prompt
    rate (its prompt tokens over the bare decode's time for them)."""
    out = []
    for agents in agents_list:
        plain = next((r for r in rows if r["model"].startswith("gemma") and r["agents"] == agents), None)
        if plain is None:
            plain_run = child("round", scenario_path, "default", agents, 1, False)
            plain = {"seconds_per_round": plain_run["round_seconds"][-1], "prompt_seconds": plain_run["decoder_prompt_seconds"]}
            plain["evaluated_prompt_tokens"] = plain_run["evaluated_prompt_tokens"]
        probed = child("round", scenario_path, "default", agents, 1, True)
        extra = probed["round_seconds"][-1] - plain["seconds_per_round"]
        rate = plain["evaluated_prompt_tokens"] / plain["prompt_seconds"]  # prompt tokens per second in this round
        question = agents * (probed["question_tokens"] + 1)  # the question and the message's last token
        row = {
            "agents": agents,
            "seconds_unprobed": plain["seconds_per_round"],
            "seconds_probed": probed["round_seconds"][-1],
            "x_unprobed": probed["round_seconds"][-1] / plain["seconds_per_round"],
            "question_tokens_per_agent": probed["question_tokens"],
            "prompt_tokens_per_second": rate,
            "extra_seconds": extra,
            "question_seconds_at_prompt_rate": question / rate,
            "x_question_cost": extra / (question / rate),
        }
        out.append(row)
        print(
            f"  {agents} agents: {row['seconds_probed']:.2f} s probed against {row['seconds_unprobed']:.2f} s "
            f"(x{row['x_unprobed']:.2f}); {extra:.2f} s more, where {row['question_tokens_per_agent']} question tokens "
            f"per agent at the round's {rate:.0f} prompt tokens/s cost {question / rate:.2f} s "
            f"(x{row['x_question_cost']:.2f})",
            flush=True,
        )
    return out


def slopes_of(rows: list) -> dict:
    """Each model's log-log slope of seconds per round against agents, from 64 agents up."""
    out = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name and r["agents"] >= 64]
        if len(mine) >= 2:
            out[name] = slope([r["agents"] for r in mine], [r["seconds_per_round"] for r in mine])
    return out


def model_order(name: str) -> int:
    return 0 if name.startswith("gemma") else 1


def scale(scenario_path: str, models, agents_list, threads: int) -> dict:
    """Seconds per round, tokens per second, x of the ceiling and peak memory for every model x agents."""
    rows, recorded = [], {}
    for name in models:
        model = str(resolve_model(name, Path(scenario_path).parent))
        for agents in agents_list:
            # Small rounds take seconds and vary by a fifth from run to run here: the median of three.
            repeats = 3 if agents <= 64 else 1
            runs = sorted(
                (child("round", scenario_path, name, agents, 1, False) for _ in range(repeats)),
                key=lambda r: r["round_seconds"][-1],
            )
            mine = runs[len(runs) // 2]
            recorded[(name, agents)] = (model, mine["batches"], mine["n_ctx"])
            bares = sorted(
                (child("ceiling", model, mine["batches"], mine["n_ctx"], threads, {}) for _ in range(repeats)),
                key=lambda r: r["seconds"],
            )
            bare_run = bares[len(bares) // 2]
            seconds = mine["round_seconds"][-1]
            tokens = mine["prompt_tokens"] + mine["completion_tokens"]
            row = {
                "model": Path(model).name,
                "agents": agents,
                "seconds_per_round": seconds,
                "ceiling_seconds": bare_run["seconds"],
                "x_ceiling": seconds / bare_run["seconds"],
                "prompt_tokens": mine["prompt_tokens"],
                "completion_tokens": mine["completion_tokens"],
                "tokens_per_second": tokens / seconds,
                "completion_tokens_per_second": mine["completion_tokens"] / seconds,
                "ceiling_tokens_per_second": tokens / bare_run["seconds"],
                "repeats": repeats,
                "sequences_per_context": mine["batch"],
                "contexts_per_round": len(mine["batches"]),
                "prompt_seconds": mine["decoder_prompt_seconds"],
                "evaluated_prompt_tokens": mine["evaluated_prompt_tokens"],
                "peak_memory_mb": mine["peak_memory_mb"],
                "ceiling_peak_memory_mb": bare_run["peak_memory_mb"],
            }
            rows.append(row)
            print(
                f"  {row['model']}, {agents} agents: {seconds:.2f} s per round ({tokens / seconds:.0f} tokens/s), "
                f"bare llama.cpp {bare_run['seconds']:.2f} s: x{row['x_ceiling']:.2f} of the ceiling; "
                f"peak memory {row['peak_memory_mb']:.0f} MB (bare {row['ceiling_peak_memory_mb']:.0f} MB)",
                flush=True,
            )
    slopes = slopes_of(rows)
    for name, value in slopes.items():
        print(f"  {name}: log-log slope of seconds per round from 64 agents up: {value:.3f} (goal <= 1.15)")
    return {"rows": rows, "slope_from_64": slopes, "goal_x_ceiling": 1.5, "goal_slope": 1.15}, recorded


def resplit(batches: list, size: int) -> list:
    """The same sequences in batches of at most ``size`` (each keeps its prefix)."""
    out = []
    for prefix, suffixes, lengths in batches:
        for s in range(0, len(suffixes), size):
            out.append((prefix, suffixes[s : s + size], lengths[s : s + size]))
    return out


def common(a: list, b: list) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def levers(model: str, batches: list, n_ctx: int, threads: int) -> dict:
    """Bare llama.cpp's time for the recorded batches of a round under each setting, one changed at a
    time from hivemind's defaults."""
    agents = sum(len(b[1]) for b in batches)
    settings = {
        "defaults: a KV stream per sequence, flash attention, n_batch = n_ubatch = 512, one context": ({}, batches),
        "one unified KV cache": ({"unified": True}, batches),
        "no flash attention": ({"flash": False}, batches),
        "n_ubatch = 128": ({"n_ubatch": 128}, batches),
        "n_ubatch = 256": ({"n_ubatch": 256}, batches),
        "n_batch = n_ubatch = 1024": ({"n_batch": 1024, "n_ubatch": 1024}, batches),
        f"{agents // 4} agents per context (4 contexts, one after another)": ({}, resplit(batches, max(agents // 4, 1))),
        f"{agents // 16} agents per context (16 contexts)": ({}, resplit(batches, max(agents // 16, 1))),
    }
    out = {}
    for label, (setting, bs) in settings.items():
        out[label] = child("ceiling", model, bs, n_ctx, threads, setting)["seconds"]
        print(f"  {label}: {out[label]:.2f} s", flush=True)
    return {"agents": agents, "model": Path(model).name, "seconds": out}


def kept_prompts(scenario_path: str, agents: int) -> dict:
    """What keeping each agent's evaluated prompt from one round to the next could save: the tokens
    of its round-2 prompt that begin as its round-1 prompt did (the prefix is evaluated once per
    batch anyway)."""
    mine = child("round", scenario_path, "default", agents, 2, False)
    first, second = mine["batches"][0], mine["batches"][-1]
    shared = sum(common(a, b) for a, b in zip(first[1], second[1], strict=True))
    total = sum(len(b) for b in second[1])
    print(f"  of round 2's {total} agent prompt tokens, {shared} ({shared / total:.1%}) begin as in round 1", flush=True)
    return {"agents": agents, "round2_agent_prompt_tokens": total, "round2_tokens_shared_with_round1": shared}


def median_of(repeats: int, fn):
    runs = [fn() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), runs[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="?", default="scenarios/live_quickstart.toml")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--scale", action="store_true", help="only part 5 (about 50 minutes): writes OUT/live_scale.json")
    p.add_argument("--agents", default=",".join(map(str, SCALE_AGENTS)), help="part 5's populations")
    p.add_argument("--models", default=",".join(SCALE_MODELS), help="part 5's models")
    p.add_argument(
        "--update",
        action="store_true",
        help="part 5: measure only --agents x --models again and replace those rows of OUT/live_scale.json",
    )
    args = p.parse_args(argv)
    if args.scale:
        return scale_main(args)

    scenario = load_scenario(args.scenario, ['live.decoding="greedy"', "live.batch=false"])
    model = resolve_model(scenario.live.model, Path(args.scenario).parent)
    live = scenario.live
    print(f"{scenario.name}: {scenario.arrays.n_nodes - 1} agents, {live.rounds} rounds, greedy, {live.max_tokens} tokens max")

    t_live, (_, rec) = median_of(args.repeats, lambda: live_rounds(scenario, model))
    calls = rec.calls
    tokens = sum(c[5] for c in calls)
    t_bare, (_, bare_texts, bare_tokens) = median_of(args.repeats, lambda: bare(model, live, calls))
    differ = sum(b != c[4][: len(b)] for b, c in zip(bare_texts, calls, strict=True))
    overhead = (t_live / tokens) / (t_bare / bare_tokens) - 1
    print(f"hivemind live rounds: {t_live:.2f} s for {len(calls)} messages, {tokens} tokens: {tokens / t_live:.1f} tokens/s")
    print(
        f"bare llama-cpp-python, same prompts: {t_bare:.2f} s for {bare_tokens} tokens: {bare_tokens / t_bare:.1f} tokens/s "
        f"({differ} of {len(calls)} greedy texts differ: llama.cpp's logits depend on how a prompt is split into "
        "batches, and llama-cpp-python's cache splits it where the previous prompt stopped matching)"
    )
    print(f"orchestration overhead per token: {overhead:+.1%} (goal < 10%); embeddings apart: {rec.embed_seconds:.2f} s")

    reuse = {}
    long_scenario = load_scenario(
        args.scenario, ['live.decoding="greedy"', "live.batch=false", f'live.anchor_text="{LONG_ANCHOR}"']
    )
    for label, sc in (("scenario prefix", scenario), ("long anchor message", long_scenario)):
        calls_here = calls if sc is scenario else live_rounds(sc, model)[1].calls
        t_on, (_, ev_on, txt_on) = median_of(args.repeats, lambda c=calls_here: replay(model, live, c, True))
        t_off, (_, ev_off, txt_off) = median_of(args.repeats, lambda c=calls_here: replay(model, live, c, False))
        reuse[label] = {
            "prefix_tokens": len(calls_here[0][0]),
            "messages": len(calls_here),
            "seconds_reused": t_on,
            "seconds_recomputed": t_off,
            "speedup": t_off / t_on,
            "prompt_tokens_evaluated_per_message_reused": ev_on,
            "prompt_tokens_evaluated_per_message_recomputed": ev_off,
            "same_texts": txt_on == txt_off,
        }
        r = reuse[label]
        print(
            f"prefix reuse, {label} ({r['prefix_tokens']} tokens): {t_on:.2f} s against {t_off:.2f} s recomputed: "
            f"{r['speedup']:.2f}x; {ev_on:.0f} against {ev_off:.0f} prompt tokens evaluated per message "
            f"(same texts: {r['same_texts']})"
        )

    memory, batching = {}, {}
    if "wheel_graph" in Path(args.scenario).read_text():
        batching = {str(n): batched_race(args.scenario, model, n, args.repeats) for n in (8, 32)}
        memory = {str(n): peak_memory_mb(args.scenario, n) for n in (8, 32)}
        sequential_memory = {str(n): peak_memory_mb(args.scenario, n, batch=False) for n in (8, 32)}
        print(
            f"peak memory of a whole run: {memory['8']:.0f} MB with 8 agents, {memory['32']:.0f} MB with 32 batched; "
            f"{sequential_memory['8']:.0f} and {sequential_memory['32']:.0f} MB one after another"
        )

    result = {
        "scenario": scenario.name,
        "model": str(model),
        "messages": len(calls),
        "completion_tokens": tokens,
        "repeats": args.repeats,
        "live_seconds": t_live,
        "bare_seconds": t_bare,
        "bare_completion_tokens": bare_tokens,
        "live_tokens_per_second": tokens / t_live,
        "bare_tokens_per_second": bare_tokens / t_bare,
        "overhead": overhead,
        "overhead_goal": 0.10,
        "bare_texts_differing": differ,
        "embedding_seconds": rec.embed_seconds,
        "prefix_reuse": reuse,
        "batched_decoding": batching,
        "peak_memory_mb_by_agents": memory,
        "peak_memory_mb_by_agents_sequential": sequential_memory if memory else {},
        "versions": versions(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "live.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'live.json'}")
    return 0 if all(r["same_texts"] for r in reuse.values()) else 1


def scale_table(d: dict) -> str:
    """The generated block ``live_scale`` of the guide: part 5's table and what it says."""
    lines = [
        "| model | agents | seconds per round | tokens/s | bare llama.cpp | x of it | peak memory |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["rows"]:
        name = "Gemma 3 270M" if r["model"].startswith("gemma") else "SmolLM2 135M"
        lines.append(
            f"| {name} | {r['agents']:,} | {r['seconds_per_round']:.1f} | {r['tokens_per_second']:.0f} | "
            f"{r['ceiling_seconds']:.1f} s | ×{r['x_ceiling']:.2f} | {r['peak_memory_mb']:,.0f} MB |"
        )
    slopes = "; ".join(
        f"{'Gemma' if m.startswith('gemma') else 'SmolLM2'} {v:.2f}" for m, v in d.get("slope_from_64", {}).items()
    )
    worst = max(r["x_ceiling"] for r in d["rows"])
    out = "\n".join(lines) + "\n\n"
    out += (
        f"Tokens are a round's prompt and completion tokens together (the shared prefix counted per agent). "
        f"Log-log slope of a round's time against the agents from 64 up: {slopes} (goal ≤ {d['goal_slope']}); "
        f"at most ×{worst:.2f} of bare llama.cpp (goal ×{d['goal_x_ceiling']})."
    )
    lever = d.get("levers")
    if lever:
        base = next(iter(lever["seconds"].values()))
        parts = [f"{k} {v:.1f} s (×{v / base:.2f})" for k, v in lever["seconds"].items()]
        out += f" Levers on bare llama.cpp, a round of {lever['agents']} agents: " + "; ".join(parts) + "."
    kept = d.get("kept_prompts")
    if kept:
        share = kept["round2_tokens_shared_with_round1"] / kept["round2_agent_prompt_tokens"]
        out += (
            f" Keeping each agent's evaluated prompt between rounds could spare {share:.0%} of a round's agent prompt "
            f"tokens ({kept['agents']} agents): a prompt is rebuilt from the neighbours' new messages every round."
        )
    for p in d.get("probe_cost", []):
        out += (
            f" Probes, {p['agents']} agents: ×{p['x_unprobed']:.2f} of an unprobed round, {p['extra_seconds']:.1f} s more "
            f"where the question's {p['question_tokens_per_agent']} tokens per agent cost "
            f"{p['question_seconds_at_prompt_rate']:.1f} s at the round's prompt rate (×{p['x_question_cost']:.2f})."
        )
    return out + "\n"


def scale_main(args) -> int:
    threads = load_scenario(args.scenario).live.threads
    print("a round against bare llama.cpp's batched decode of the same prompts and completion lengths:")
    agents = [int(a) for a in args.agents.split(",")]
    models = args.models.split(",")
    table, recorded = scale(args.scenario, models, agents, threads)
    out = Path(args.out)
    if args.update:
        old = json.loads((out / "live_scale.json").read_text())
        new = {(r["model"], r["agents"]): r for r in table["rows"]}
        rows = [new.pop((r["model"], r["agents"]), r) for r in old["rows"]] + list(new.values())
        old["rows"] = sorted(rows, key=lambda r: (model_order(r["model"]), r["agents"]))
        old["slope_from_64"] = slopes_of(old["rows"])
        measured = [[r["model"], r["agents"]] for r in table["rows"]]
        old.setdefault("updated", []).append({"rows": measured, "versions": versions()})
        (out / "live_scale.json").write_text(json.dumps(old, indent=2) + "\n")
        print(f"updated {out / 'live_scale.json'}")
        return 0
    lever_at = max(a for a in agents if a <= 256)
    print(f"levers, bare llama.cpp on the round of {lever_at} {models[0]} agents:")
    lever = levers(*recorded[(models[0], lever_at)], threads)
    print("keeping each agent's prompt between rounds, two rounds of 64 Gemma agents:")
    kept = kept_prompts(args.scenario, 64)
    print("probes, Gemma: a probed round against the same round unprobed")
    probes = probe_cost(args.scenario, [a for a in (32, 256) if a <= max(agents)], table["rows"])
    result = {"scenario": args.scenario, "threads": threads, **table, "levers": lever, "kept_prompts": kept}
    result["probe_cost"] = probes
    result["versions"] = versions()
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'live_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
