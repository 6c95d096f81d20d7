"""The rounds of a live run: agents read the anchor and their neighbours, write, and are measured.

Round 0 holds the initial messages (given, or written from each persona). In every
later round each peripheral agent reads the anchor's fixed message and its graph
neighbours' latest messages from the round before (all agents speak simultaneously,
as in the engine's gradient step) and writes one new message. The anchor never
writes and reads no one: infinite inertia in text.

Each message goes to ``transcript.jsonl`` as soon as it exists, flushed; the per-round
metrics are rewritten after every round. A killed run resumes from the transcript
without regenerating anything it holds.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hivemind.errors import InputError
from hivemind.live.backend import Backend
from hivemind.live.cleaner import Scaffold
from hivemind.live.config import DECODINGS, LiveSpec, read_live
from hivemind.live.metrics import mean_pairwise_distance, round_metrics, state_id, vendi_score
from hivemind.live.prompts import PromptTooLong, build_prompt
from hivemind.scenario import Scenario

TRANSCRIPT = "transcript.jsonl"
FORMAT_VERSION = 1


class LiveError(InputError, RuntimeError):
    """A live run cannot go on: ``str(e)`` is the one-line message for the user."""


# ---------------------------------------------------------------------------
# Who reads whom


def in_neighbours(scenario: Scenario) -> dict[int, list[int]]:
    """For every peripheral agent, the peripheral agents it hears (the anchor is heard by all)."""
    a, anchor = scenario.arrays, scenario.anchor_index
    heard: dict[int, set[int]] = {i: set() for i in range(a.n_nodes) if i != anchor}
    pairs = [(int(s), int(d)) for s, d in zip(a.src, a.dst, strict=True)]
    if not a.directed:
        pairs += [(d, s) for s, d in pairs]
    for s, d in pairs:
        if d != anchor and s != anchor and s != d:
            heard[d].add(s)
    return {i: sorted(js) for i, js in heard.items()}


def message_seeds(seed: int, decodings: tuple[str, ...], rounds: int, n_nodes: int) -> np.ndarray:
    """One sampling seed per (decoding, round, agent): a JAX key folded with the three, so none repeats.

    Drawn up front and independent of the order of generation, which lets a resumed
    stochastic run continue the same streams. A message's seed depends only on its
    decoding, round and agent, so a longer run repeats a shorter one's first rounds.
    """
    import jax

    root = jax.random.key(seed)
    ids = np.asarray([DECODINGS.index(d) for d in decodings])

    def one(d, r, i):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(root, d), r), i)
        return jax.random.bits(key, (), "uint32")

    grid = np.meshgrid(ids, np.arange(rounds + 1), np.arange(n_nodes), indexing="ij")
    bits = np.asarray(jax.vmap(one)(*(g.ravel() for g in grid)), dtype=np.uint64)
    # 31 bits: llama.cpp reads 0xFFFFFFFF as "pick a random seed".
    return (bits >> np.uint64(1)).astype(np.int64).reshape(len(decodings), rounds + 1, n_nodes)


# ---------------------------------------------------------------------------
# The transcript


class Transcript:
    """``transcript.jsonl``: a header line, then one line per message, each flushed on write."""

    def __init__(self, path: Path, header: dict, records: list[dict]):
        self.path = path
        self.header = header
        self.records = records
        self._file = open(path, "a", encoding="utf-8")

    @classmethod
    def create(cls, path: Path, header: dict) -> Transcript:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(header) + "\n", encoding="utf-8")
        return cls(path, header, [])

    @classmethod
    def resume(cls, path: Path, header: dict) -> Transcript:
        """Reopen ``path``, checking that it was written by this scenario and model.

        A last line cut short by a kill is dropped (its message is generated again).
        """
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LiveError(f"{path}: nothing to resume (no transcript); run without --resume") from None
        pieces = raw.splitlines(keepends=True)
        keep, records, old = 0, [], None
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            if piece.strip():
                try:
                    rec = json.loads(piece)
                except ValueError:
                    if last:  # the torn tail of a killed write: drop it, its message is generated again
                        break
                    raise LiveError(f"{path}: line {k + 1} is not JSON; the transcript is damaged") from None
                if old is None:
                    old = rec
                elif rec.get("kind") == "message":
                    records.append(rec)
            keep += len(piece)
        if old is None or old.get("kind") != "header":
            raise LiveError(f"{path}: has no header line; it was not written by hivemind live")
        if old.get("fingerprint") != header["fingerprint"]:
            raise LiveError(f"{path}: was written for another scenario (fingerprint differs); use --force to start over")
        if _model_files(old) != _model_files(header):
            raise LiveError(f"{path}: was written for another model file (model_sha256 differs); use --force to start over")
        with open(path, "r+b") as f:
            f.truncate(keep)
            if keep and not raw[:keep].endswith(b"\n"):  # a whole last record whose newline was lost
                f.seek(keep)
                f.write(b"\n")
        return cls(path, old, records)

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.records.append(record)

    def close(self) -> None:
        self._file.close()


def _model_files(header: dict) -> tuple:
    """The SHA-256 of every generation model a header names (a header from before several models names one).

    The embedder is left out: it measures the texts after they are written, so a
    transcript can be resumed (and re-measured) with another one.
    """
    first = header.get("model_sha256")
    models = tuple(m.get("sha256") for m in header.get("models", [])) or (first,)
    return first, models


# ---------------------------------------------------------------------------
# The run


@dataclass
class Trajectory:
    """What one decoding produced, round by round, for the peripheral agents (in graph order)."""

    decoding: str
    agents: list[int]
    texts: list[list[str]] = field(default_factory=list)  # [round][agent]: the agent's latest message
    rows: list[dict] = field(default_factory=list)  # [round]: metrics
    embeddings: list[np.ndarray] = field(default_factory=list)  # [round]: (agents, D) unit vectors
    anchor_embedding: np.ndarray | None = None  # (D,) unit vector


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise LiveError("the model returned a zero or non-finite embedding; embedding distances are undefined")
    return v / norm


def geodesic(u: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Great-circle distance between unit vectors, as 2 asin(|u - a| / 2): accurate near 0 and pi."""
    return 2.0 * np.arcsin(np.clip(np.linalg.norm(u - a, axis=-1) / 2.0, 0.0, 1.0))


def embedder_key(spec: LiveSpec) -> str:
    """The scenario key that chose the embedder: the generation model's for "self"."""
    return "live.model" if spec.embedding_model == "self" else "live.embedding_model"


class Embedder:
    """Unit-norm embeddings, each text embedded once."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.cache:
            self.cache[text] = _unit(np.asarray(self.backend.embed(text), dtype=np.float64))
        return self.cache[text]


@dataclass
class Population:
    """The backends of a run: one per distinct generation model (keyed as ``live.model`` writes it)
    and the one that embeds every text, so that distances do not depend on who wrote it."""

    generators: dict[str, Backend]
    embedder: Backend

    @classmethod
    def of(cls, spec: LiveSpec, backend: Backend | Population) -> Population:
        """``backend`` as it is, or one backend serving every model of ``spec`` and the embeddings."""
        if isinstance(backend, Population):
            return backend
        return cls({m: backend for m in spec.distinct_models}, backend)

    @property
    def first(self) -> Backend:
        return next(iter(self.generators.values()))

    def close(self) -> None:
        """Close every backend once (one may serve several models and the embeddings)."""
        for b in {id(b): b for b in [*self.generators.values(), self.embedder]}.values():
            b.close()


def header_for(scenario: Scenario, backend: Backend | Population, model_path: str | dict[str, str]) -> dict:
    """The transcript's first line; ``model_path`` is the label of the model (or of each, by name as written)."""
    spec = scenario.live
    pop = Population.of(spec, backend)
    labels = model_path if isinstance(model_path, dict) else {m: model_path for m in pop.generators}
    models = [{"model": m, "path": labels.get(m, m), "sha256": b.model_sha256} for m, b in pop.generators.items()]
    return {
        "kind": "header",
        "format": FORMAT_VERSION,
        "scenario": scenario.name,
        "source": scenario.source,
        "fingerprint": scenario.fingerprint,
        "model": models[0]["path"],
        "model_sha256": pop.first.model_sha256,
        "models": models,
        "embedding_model": {"path": labels.get("embedding", models[0]["path"]), "sha256": pop.embedder.model_sha256},
        "anchor": str(scenario.arrays.labels[scenario.anchor_index]),
        "anchor_text": spec.anchor_text,
        "rule": spec.rule.describe(),
        "rounds": spec.rounds,
        "decodings": list(spec.decodings),
        "seed": spec.seed,
        "batch": spec.batch,
        # How the texts were produced (threads, batch): free to change on --resume, which says so.
        "execution": spec.execution(),
        # Informational, never compared on --resume: greedy texts differ between CPUs and llama.cpp builds.
        "runtime": {**pop.first.runtime(), "machine": platform.machine(), "processor": platform.processor() or None},
    }


def converse(
    scenario: Scenario,
    backend: Backend | Population,
    transcript: Transcript,
    say: Callable[[str], None] = print,
    on_round: Callable[[list[Trajectory]], None] | None = None,
) -> list[Trajectory]:
    """Run (or finish) every decoding's rounds; messages already in ``transcript`` are reused.

    With ``live.batch``, a round's generated messages are decoded in batches of agents
    that share a model, in graph order. A batch of which the transcript holds only some
    messages is decoded again whole and only the missing messages are kept, so a resumed
    round sees the same batches, and the same numbers, as an uninterrupted one.

    ``on_round(trajectories)`` is called after each finished round, to save what exists.
    """
    scenario = read_live(scenario)
    spec: LiveSpec = scenario.live
    pop = Population.of(spec, backend)
    labels = [str(v) for v in scenario.arrays.labels]
    anchor = scenario.anchor_index
    agents = [i for i in range(len(labels)) if i != anchor]
    hears = in_neighbours(scenario)
    seeds = message_seeds(spec.seed, spec.decodings, spec.rounds, len(labels))
    done = {(r["decoding"], r["round"], r["index"]): r for r in transcript.records}
    embed = Embedder(pop.embedder)
    try:
        anchor_vec = embed(spec.anchor_text)
    except LiveError as e:
        raise LiveError(f"{scenario.source}: {embedder_key(spec)}: {e} (it gives no usable embeddings)") from None
    wraps = {m: b.chat_wrap() for m, b in pop.generators.items()}
    scaffold = Scaffold.of((spec.prompt, spec.opening_prompt, spec.neighbour_line), labels)
    shared = {"anchor": spec.anchor_text, "rule": spec.rule.describe()}
    trajectories = []
    for d, decoding in enumerate(spec.decodings):
        traj = Trajectory(decoding, agents, anchor_embedding=anchor_vec)
        trajectories.append(traj)
        latest: dict[int, tuple[str, int]] = {}  # agent -> (text, round written)
        for rnd in range(spec.rounds + 1):
            t0 = time.perf_counter()
            made = reused = 0
            outputs: dict[int, dict] = {}
            to_generate: dict[str, list[tuple[int, dict]]] = {}  # model -> [(agent, record before generation)]
            for k, i in enumerate(agents):
                model = spec.model_of(k)
                b = pop.generators[model]
                sampling = spec.sampling(decoding, k)
                budget = b.n_ctx - spec.max_tokens
                rec = _message(scenario, b, sampling, wraps[model], budget, shared, rnd, i, k, labels, hears, latest)
                # The run's decoding, even for an agent whose temperature 0 makes it decode greedily.
                rec |= {"decoding": decoding, "seed": int(seeds[d, rnd, i]), "model_sha256": b.model_sha256}
                if rec["generated"]:
                    to_generate.setdefault(model, []).append((i, rec | {"_sampling": sampling}))
                elif (decoding, rnd, i) in done:
                    outputs[i], reused = done[(decoding, rnd, i)], reused + 1
                else:
                    transcript.append(rec)
                    outputs[i], made = rec, made + 1
            concurrent = {m: p for m, p in to_generate.items() if hasattr(pop.generators[m], "generate_each")}
            if concurrent:  # one server backend for all its models: the round's requests in flight together
                m, r = _decode_each(
                    pop.generators[next(iter(concurrent))], concurrent, (decoding, rnd), done, outputs, transcript, scaffold, spec
                )
                made, reused = made + m, reused + r
            for model, pending in to_generate.items():
                if model in concurrent:
                    continue
                size = spec.batch_size(len(pending))
                m, r = _decode(pop.generators[model], pending, size, (decoding, rnd), done, outputs, transcript, scaffold, spec)
                made, reused = made + m, reused + r
            _speak(latest, outputs, agents, rnd, spec, labels)
            texts = [latest[i][0] for i in agents]
            traj.texts.append(texts)
            vectors = np.stack([embed(t) for t in texts])
            traj.embeddings.append(vectors)
            row = _row(decoding, rnd, texts, vectors, anchor_vec, [outputs[i] for i in agents], [labels[i] for i in agents], spec)
            traj.rows.append(row)
            if on_round is not None:
                on_round(trajectories)
            what = f"{made} written" + (f", {reused} from the transcript" if reused else "")
            say(
                f"  {decoding} round {rnd}/{spec.rounds}: {what}; compliance {row['compliance']:.2f}, "
                f"Jaccard {row['jaccard_to_anchor']:.3f}, embedding distance {row['embedding_distance_to_anchor']:.3f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    return trajectories


def _decode(backend, pending, size: int, key: tuple, done: dict, outputs: dict, transcript, scaffold, spec) -> tuple[int, int]:
    """Decode one model's ``pending`` messages of round ``key`` = (decoding, round) in batches of
    ``size`` (0: one by one), into ``outputs`` and the transcript; returns (written, reused).

    A batch of which the transcript holds only some messages is decoded again whole and only
    the missing ones are kept, so a resumed round sees the same batches as an uninterrupted one.
    """
    made = reused = 0
    step = max(size, 1)
    for start in range(0, len(pending), step):
        group = pending[start : start + step]
        for i, _ in group:
            if (*key, i) in done:
                outputs[i], reused = done[(*key, i)], reused + 1
        if all((*key, i) in done for i, _ in group):
            continue
        if size == 0:
            ((i, rec),) = group
            gens = [backend.generate(rec["_prefix"], rec["_suffix"], rec["_sampling"], rec["seed"])]
        else:
            gens = backend.generate_batch(
                group[0][1]["_prefix"],
                [rec["_suffix"] for _, rec in group],
                [rec["_sampling"] for _, rec in group],
                [rec["seed"] for _, rec in group],
            )
        for (i, rec), gen in zip(group, gens, strict=True):
            if (*key, i) not in done:
                rec = _generated(rec, gen, scaffold, spec.clean, len(group) if size else 0)
                transcript.append(rec)
                outputs[i], made = rec, made + 1
    return made, reused


def _decode_each(backend, pending: dict, key: tuple, done: dict, outputs: dict, transcript, scaffold, spec) -> tuple[int, int]:
    """Every message of round ``key`` that the transcript lacks, for all models of ``pending`` at
    once through ``backend.generate_each``; each goes to the transcript as it arrives."""
    from hivemind.live.server import Request, prompt_text

    made = reused = 0
    jobs = []
    for model, items in pending.items():
        for i, rec in items:
            if (*key, i) in done:
                outputs[i], reused = done[(*key, i)], reused + 1
                continue
            text = prompt_text(rec["_prefix"], rec["_suffix"])
            label = f"{key[0]} round {key[1]}, agent {rec['agent']}"
            jobs.append((i, rec, Request(model, text, rec["_sampling"], rec["seed"], label)))
    for k, gen in backend.generate_each([req for _, _, req in jobs]):
        i, rec, _ = jobs[k]
        rec = _generated(rec, gen, scaffold, spec.clean, 0)
        # The prompt's length in the server's tokens; the characters the budget counted instead.
        rec["prompt_chars"] = rec.pop("prompt_tokens")
        rec.pop("prefix_tokens", None)
        rec["prompt_tokens"] = gen.prompt_tokens
        transcript.append(rec)
        outputs[i], made = rec, made + 1
    return made, reused


def _generated(rec: dict, gen, scaffold, clean: bool, batch_size: int) -> dict:
    """A generated message's record: its text (cleaned of prompt scaffolding) and how it was decoded."""
    rec = {k: v for k, v in rec.items() if not k.startswith("_")}
    cleaned = scaffold.clean(gen.text)
    text = cleaned.text if clean else gen.text
    if cleaned.malformed:  # the raw output stays in the transcript beside what was kept
        rec |= {"raw_text": cleaned.raw, "removed": list(cleaned.removed)}
    return rec | {
        "text": text,
        "sha256": state_id(text),
        "empty": not text,
        "malformed": cleaned.malformed,
        "completion_tokens": gen.completion_tokens,
        "prefix_cached": gen.prefix_cached,
        "finish_reason": gen.finish_reason,
        "batch_size": batch_size,
        "seconds": round(gen.seconds, 4),
        **(gen.extra or {}),
    }


def _speak(latest: dict, outputs: dict, agents: list[int], rnd: int, spec: LiveSpec, labels: list[str]) -> None:
    """The simultaneous update: every agent's state becomes its message of this round (nobody
    saw this round's messages while writing theirs); an empty message keeps the last state."""
    for k, i in enumerate(agents):
        if outputs[i]["text"]:
            latest[i] = (outputs[i]["text"], rnd)
        elif rnd == 0 and spec.personas is not None and spec.personas[k].strip():
            # An agent silent from the start speaks its persona: it needs a first state.
            latest[i] = (spec.personas[k], 0)
    if any(i not in latest for i in agents):
        silent = labels[next(i for i in agents if i not in latest)]
        raise LiveError(f"agent {silent} wrote nothing in round 0 and has no persona, so it has no message to start from")


def _row(decoding, rnd, texts, vectors, anchor_vec, recs, names, spec) -> dict:
    """The round's metrics; keys starting with "_" hold per-agent lists (for agents.csv and live.nc)."""
    m = round_metrics(texts, spec.anchor_text, spec.rule)
    distances = geodesic(vectors, anchor_vec)
    compliant = [bool(spec.rule.check(t)) for t in texts]
    return {
        "decoding": decoding,
        "round": rnd,
        **{k: v for k, v in m.items() if k != "jaccard_per_agent"},
        "embedding_distance_to_anchor": float(np.mean(distances)),
        "vendi_score": vendi_score(vectors),
        "mean_pairwise_distance": mean_pairwise_distance(vectors),
        "empty_outputs": sum(bool(r.get("empty")) for r in recs),
        # Messages of this round whose raw output held prompt scaffolding (cleaned before use unless live.clean = false).
        "malformed_outputs": sum(bool(r.get("malformed")) for r in recs),
        "truncated_prompts": sum(r.get("dropped_neighbours", 0) > 0 for r in recs),
        "dropped_neighbour_messages": sum(r.get("dropped_neighbours", 0) for r in recs),
        "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in recs),
        "completion_tokens": sum(r.get("completion_tokens", 0) for r in recs),
        "_labels": names,
        "_jaccard_per_agent": m["jaccard_per_agent"],
        "_compliant": compliant,
        "_distance_per_agent": distances.tolist(),
        "_groups": list(spec.group_of or ()),
        "_by_group": _by_group(spec.group_of, texts, vectors, distances, m["jaccard_per_agent"], compliant),
    }


def _by_group(groups, texts, vectors, distances, jaccard, compliant) -> dict:
    """The round's measures within each group of agents ({} for one population)."""
    if groups is None or len(set(groups)) < 2:
        return {}
    out = {}
    for g in dict.fromkeys(groups):
        k = [i for i, h in enumerate(groups) if h == g]
        mine = [texts[i] for i in k]
        out[g] = {
            "agents": len(k),
            "compliance": float(np.mean([compliant[i] for i in k])),
            "jaccard_to_anchor": float(np.mean([jaccard[i] for i in k])),
            "embedding_distance_to_anchor": float(np.mean(distances[k])),
            "vendi_score": vendi_score(vectors[k]),
            "mean_pairwise_distance": mean_pairwise_distance(vectors[k]),
            "distinct_outputs": len({state_id(t) for t in mine}),
        }
    return out


def _message(scenario, backend, sampling, wrap, budget, shared, rnd, i, k, labels, hears, latest) -> dict:
    """The transcript record of agent ``i``'s message in round ``rnd``, before generation."""
    spec = scenario.live
    rec = {
        "kind": "message",
        "decoding": sampling.decoding,
        "round": rnd,
        "agent": labels[i],
        "index": i,
        "sampling": sampling.to_dict(),
    }
    if rnd == 0 and spec.initial_texts is not None:
        text = spec.initial_texts[k]
        return rec | {"generated": False, "text": text, "sha256": state_id(text), "empty": not text.strip()}
    persona = spec.personas[k] if spec.personas is not None else ""
    if rnd == 0:
        template, neighbours, own = spec.opening_prompt, [], ""
    else:
        template, own = spec.prompt, latest[i][0]
        # Oldest message first, so that a prompt too long for n_ctx loses the stalest news.
        heard = sorted((latest[j][1], n, j) for n, j in enumerate(hears[i]) if j in latest)
        neighbours = [(labels[j], latest[j][0]) for _, _, j in heard]
    fields = {"agent": labels[i], "persona": persona, "own": own, "round": rnd}
    try:
        prompt = build_prompt(template, shared, fields, neighbours, backend.tokenize, budget, wrap, spec.neighbour_line)
    except PromptTooLong as e:
        raise LiveError(
            f"{scenario.source}: live.n_ctx = {backend.n_ctx} is too small for agent {labels[i]} in round {rnd}: {e}"
        ) from None
    return rec | {
        "generated": True,
        "prompt_sha256": hashlib.sha256(prompt.text.encode()).hexdigest(),
        "prompt_tokens": len(prompt.prefix_tokens) + len(prompt.suffix_tokens),
        "prefix_tokens": len(prompt.prefix_tokens),
        "dropped_neighbours": prompt.dropped,
        "_prefix": prompt.prefix_tokens,
        "_suffix": prompt.suffix_tokens,
    }
