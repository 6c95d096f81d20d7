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
from hivemind.live.backends.base import Backend, ProbeRequest
from hivemind.live.cleaner import Scaffold
from hivemind.live.config import DECODINGS, LiveSpec, read_live
from hivemind.live.metrics import mean_pairwise_distance, round_metrics, state_id, vendi_score
from hivemind.live.probe import LOW_MASS, Form, read
from hivemind.live.prompts import PromptTooLong, build_prompt
from hivemind.scenario import Scenario

TRANSCRIPT = "transcript.jsonl"
FORMAT_VERSION = 1


class LiveError(InputError, RuntimeError):
    """A live run cannot go on: ``str(e)`` is the one-line message for the user."""


# ---------------------------------------------------------------------------
# Who reads whom


def anchor_of(scenario: Scenario) -> int | None:
    """The anchor node's index; None for a discussion without an anchor."""
    return scenario.anchor_index if scenario.anchors else None


def in_neighbours(scenario: Scenario) -> dict[int, list[int]]:
    """For every peripheral agent, the peripheral agents it hears (the anchor is heard by all)."""
    a, anchor = scenario.arrays, anchor_of(scenario)
    heard: dict[int, set[int]] = {i: set() for i in range(a.n_nodes) if i != anchor}
    pairs = [(int(s), int(d)) for s, d in zip(a.src, a.dst, strict=True)]
    if not a.directed:
        pairs += [(d, s) for s, d in pairs]
    for s, d in pairs:
        if d != anchor and s != anchor and s != d:
            heard[d].add(s)
    return {i: sorted(js) for i, js in heard.items()}


def peer_edges(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of the agents' graph without the anchor, agents numbered in graph order: dst hears src."""
    hears = in_neighbours(scenario)
    agents = sorted(hears)
    index = {i: k for k, i in enumerate(agents)}
    pairs = [(index[j], index[i]) for i in agents for j in hears[i]]
    return np.asarray([s for s, _ in pairs], np.int64), np.asarray([d for _, d in pairs], np.int64)


def discussions(hears: dict[int, list[int]], agents: list[int]) -> list[int] | None:
    """Each agent's discussion (a connected component of who hears whom, numbered by its first
    agent in graph order); None when everyone is in one discussion."""
    parent = {i: i for i in agents}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in agents:
        for j in hears[i]:
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = [root(i) for i in agents]
    number = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return None if len(number) < 2 else [number[r] for r in roots]


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
        old, records, keep = _parse(raw, path)
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


def _parse(raw: bytes, path: Path) -> tuple[dict, list[dict], int]:
    """(header, message records, bytes up to the last whole record) of a transcript's bytes.

    A last line cut short by a kill is left out; any other line that is not JSON, or a first
    line that is not a header, is a ``LiveError``.
    """
    pieces = raw.splitlines(keepends=True)
    keep, records, header = 0, [], None
    for k, piece in enumerate(pieces):
        last = k == len(pieces) - 1
        if piece.strip():
            try:
                rec = json.loads(piece)
            except ValueError:
                if last:  # the torn tail of a killed write: its message is generated again
                    break
                raise LiveError(f"{path}: line {k + 1} is not JSON; the transcript is damaged") from None
            if header is None:
                header = rec
            elif rec.get("kind") == "message":
                records.append(rec)
        keep += len(piece)
    if header is None or header.get("kind") != "header":
        raise LiveError(f"{path}: has no header line; it was not written by hivemind live")
    return header, records, keep


def read_transcript(path: Path) -> tuple[dict, list[dict]]:
    """The header and the message records of a transcript, as ``Transcript.resume`` reads them."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise LiveError(f"{path}: cannot be read ({e.strerror or e})") from None
    header, records, _ = _parse(raw, Path(path))
    return header, records


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


@dataclass(frozen=True)
class Round:
    """One round's measures: the population's (``metrics``, a row of rounds.csv) and each agent's
    (``agents``: column name -> one value per peripheral agent, in graph order, for agents.csv).

    Measures that need an anchor (Jaccard, embedding distance), a rule (compliance) or probes
    are absent when the run has none.
    """

    decoding: str
    round: int
    metrics: dict
    agents: dict[str, list]
    labels: tuple[str, ...]
    groups: tuple[str, ...] | None = None  # each agent's group, when there are several
    conversations: tuple[int, ...] | None = None  # each agent's discussion, when there are several
    by_group: dict[str, dict] = field(default_factory=dict)  # group -> its measures

    def row(self) -> dict:
        return {"decoding": self.decoding, "round": self.round, **self.metrics}


@dataclass
class Trajectory:
    """What one decoding produced, round by round, for the peripheral agents (in graph order)."""

    decoding: str
    agents: list[int]
    texts: list[list[str]] = field(default_factory=list)  # [round][agent]: the agent's latest message
    rows: list[Round] = field(default_factory=list)  # [round]: measures
    embeddings: list[np.ndarray] = field(default_factory=list)  # [round]: (agents, D) unit vectors
    anchor_embedding: np.ndarray | None = None  # (D,) unit vector; None without an anchor
    conversations: list[int] | None = None  # each agent's discussion, when there are several
    stances: tuple[int, ...] | None = None  # each agent's assigned stance (live.stances)


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
        "anchor": None if not scenario.anchors else str(scenario.arrays.labels[scenario.anchor_index]),
        "anchor_text": spec.anchor_text,
        "topic": spec.topic,
        "rule": None if spec.rule is None else spec.rule.describe(),
        "rounds": spec.rounds,
        "decodings": list(spec.decodings),
        "seed": spec.seed,
        "batch": spec.batch,
        # How the texts were produced (threads, batch): free to change on --resume, which says so.
        "execution": spec.execution(),
        # Informational, never compared on --resume: greedy texts differ between CPUs and llama.cpp builds.
        "runtime": {**pop.first.runtime(), "machine": platform.machine(), "processor": platform.processor() or None},
    }


@dataclass(frozen=True)
class Asking:
    """A model's probe in a run: the form, and the request every message of that model carries."""

    form: Form
    request: ProbeRequest

    def reading(self, probabilities) -> dict:
        return read(probabilities, self.request.marks.answer, self.form.values).to_dict()


def converse(
    scenario: Scenario,
    backend: Backend | Population,
    transcript: Transcript,
    say: Callable[[str], None] = print,
    on_round: Callable[[list[Trajectory]], None] | None = None,
    probes: dict[str, Asking] | None = None,
) -> list[Trajectory]:
    """Run (or finish) every decoding's rounds; messages already in ``transcript`` are reused.

    With ``live.batch``, a round's generated messages are decoded in batches of agents
    that share a model, in graph order. A batch of which the transcript holds only some
    messages is decoded again whole and only the missing messages are kept, so a resumed
    round sees the same batches, and the same numbers, as an uninterrupted one.

    ``probes`` (model as written -> ``Asking``, see ``hivemind.live.probe``): every message of
    that model is followed by the probe's question, and its reading goes into the record.
    ``on_round(trajectories)`` is called after each finished round, to save what exists.
    """
    scenario = read_live(scenario)
    spec: LiveSpec = scenario.live
    probes = probes or {}
    pop = Population.of(spec, backend)
    labels = [str(v) for v in scenario.arrays.labels]
    anchor = anchor_of(scenario)
    agents = [i for i in range(len(labels)) if i != anchor]
    hears = in_neighbours(scenario)
    # An anchor heard by everyone joins them all into one discussion.
    conversations = discussions(hears, agents) if anchor is None else None
    seeds = message_seeds(spec.seed, spec.decodings, spec.rounds, len(labels))
    done = {(r["decoding"], r["round"], r["index"]): r for r in transcript.records}
    embed = Embedder(pop.embedder)
    try:
        anchor_vec = embed(spec.anchor_text) if spec.anchored else None
        if anchor_vec is None:
            embed(spec.topic)  # a first embedding, so that a broken embedder fails before round 0
    except LiveError as e:
        raise LiveError(f"{scenario.source}: {embedder_key(spec)}: {e} (it gives no usable embeddings)") from None
    wraps = {m: b.chat_wrap() for m, b in pop.generators.items()}
    scaffold = Scaffold.of((spec.prompt, spec.opening_prompt, spec.neighbour_line), labels)
    shared = {"anchor": spec.anchor_text or "", "rule": spec.rule.describe() if spec.rule else "", "topic": spec.topic}
    trajectories = []
    for d, decoding in enumerate(spec.decodings):
        traj = Trajectory(decoding, agents, anchor_embedding=anchor_vec, conversations=conversations, stances=spec.stances)
        trajectories.append(traj)
        latest: dict[int, tuple[str, int]] = {}  # agent -> (text, round written)
        for rnd in range(spec.rounds + 1):
            t0 = time.perf_counter()
            made = reused = 0
            outputs: dict[int, dict] = {}
            to_generate: dict[str, list[tuple[int, dict]]] = {}  # model -> [(agent, record before generation)]
            given: dict[str, list[tuple[int, dict]]] = {}  # model -> given messages to probe
            for k, i in enumerate(agents):
                model = spec.model_of(k)
                b = pop.generators[model]
                sampling = spec.sampling(decoding, k)
                asking = probes.get(model)
                # The probe's question follows the message in the same window.
                budget = b.n_ctx - spec.max_tokens - (len(asking.request.question) + 1 if asking else 0)
                rec = _message(scenario, b, sampling, wraps[model], budget, shared, rnd, i, k, labels, hears, latest, asking)
                # The run's decoding, even for an agent whose temperature 0 makes it decode greedily.
                rec |= {"decoding": decoding, "seed": int(seeds[d, rnd, i]), "model_sha256": b.model_sha256}
                if rec["generated"]:
                    to_generate.setdefault(model, []).append((i, rec | {"_sampling": sampling}))
                elif (decoding, rnd, i) in done:
                    outputs[i], reused = done[(decoding, rnd, i)], reused + 1
                elif asking is not None:
                    given.setdefault(model, []).append((i, rec))
                else:
                    transcript.append(rec)
                    outputs[i], made = rec, made + 1
            for model, items in given.items():
                made += _probe_given(pop.generators[model], probes[model], items, outputs, transcript)
            served = {m: p for m, p in to_generate.items() if pop.generators[m].concurrent}
            if served:  # one server backend for all its models: the round's requests in flight together
                m, r = _decode_each(
                    pop.generators[next(iter(served))], served, (decoding, rnd), done, outputs, transcript, scaffold, spec, probes
                )
                made, reused = made + m, reused + r
            for model, pending in to_generate.items():
                if model in served:
                    continue
                size = spec.batch_size(len(pending))
                b = pop.generators[model]
                m, r = _decode(b, pending, size, (decoding, rnd), done, outputs, transcript, scaffold, spec, probes.get(model))
                made, reused = made + m, reused + r
            _speak(latest, outputs, agents, rnd, spec, labels)
            texts = [latest[i][0] for i in agents]
            traj.texts.append(texts)
            vectors = np.stack([embed(t) for t in texts])
            traj.embeddings.append(vectors)
            row = _round(
                decoding,
                rnd,
                texts,
                vectors,
                anchor_vec,
                [outputs[i] for i in agents],
                [labels[i] for i in agents],
                spec,
                conversations,
            )
            traj.rows.append(row)
            if on_round is not None:
                on_round(trajectories)
            what = f"{made} written" + (f", {reused} from the transcript" if reused else "")
            say(f"  {decoding} round {rnd}/{spec.rounds}: {what}; {describe_round(row)} ({time.perf_counter() - t0:.1f} s)")
    return trajectories


def describe_round(row: Round) -> str:
    """The round's measures that exist, in one clause: compliance, Jaccard, distance, probe."""
    m = row.metrics
    parts = []
    if "compliance" in m:
        parts.append(f"compliance {m['compliance']:.2f}")
    if "jaccard_to_anchor" in m:
        parts.append(f"Jaccard {m['jaccard_to_anchor']:.3f}")
    if "embedding_distance_to_anchor" in m:
        parts.append(f"embedding distance {m['embedding_distance_to_anchor']:.3f}")
    if "within_discussion_distance" in m:
        parts.append(f"distance within discussions {m['within_discussion_distance']:.3f}")
    if "probe_mean" in m:
        low = " (little mass on the answers: the question was hardly taken as one)" if m["probe_mass"] < LOW_MASS else ""
        parts.append(f"probe {m['probe_mean']:+.2f} (sd {m['probe_sd']:.2f}, mass {m['probe_mass']:.2f}){low}")
    return ", ".join(parts) or f"{m['distinct_outputs']} distinct messages"


def _probe_given(backend, asking: Asking, items, outputs: dict, transcript) -> int:
    """Probe the given (not generated) messages of one model in one call, then record them."""
    suffixes = [[*rec["_suffix"], *backend.tokenize(rec["text"], False), *asking.request.question] for _, rec in items]
    probs = backend.probe(items[0][1]["_prefix"], suffixes, asking.request.marks)
    for (i, rec), p in zip(items, probs, strict=True):
        rec = {k: v for k, v in rec.items() if not k.startswith("_")} | asking.reading(p)
        transcript.append(rec)
        outputs[i] = rec
    return len(items)


def _decode(backend, pending, size: int, key: tuple, done: dict, outputs: dict, transcript, scaffold, spec, asking=None):
    """Decode one model's ``pending`` messages of round ``key`` = (decoding, round) in batches of
    ``size`` (0: one by one), into ``outputs`` and the transcript; returns (written, reused).

    A batch of which the transcript holds only some messages is decoded again whole and only
    the missing ones are kept, so a resumed round sees the same batches as an uninterrupted one.
    """
    made = reused = 0
    step = max(size, 1)
    request = asking.request if asking else None
    for start in range(0, len(pending), step):
        group = pending[start : start + step]
        for i, _ in group:
            if (*key, i) in done:
                outputs[i], reused = done[(*key, i)], reused + 1
        if all((*key, i) in done for i, _ in group):
            continue
        if size == 0:
            ((i, rec),) = group
            gens = [backend.generate(rec["_prefix"], rec["_suffix"], rec["_sampling"], rec["seed"], request)]
        else:
            gens = backend.generate_batch(
                group[0][1]["_prefix"],
                [rec["_suffix"] for _, rec in group],
                [rec["_sampling"] for _, rec in group],
                [rec["seed"] for _, rec in group],
                request,
            )
        for (i, rec), gen in zip(group, gens, strict=True):
            if (*key, i) not in done:
                rec = _generated(rec, gen, scaffold, spec.clean, len(group) if size else 0, asking)
                transcript.append(rec)
                outputs[i], made = rec, made + 1
    return made, reused


def _decode_each(backend, pending: dict, key: tuple, done: dict, outputs: dict, transcript, scaffold, spec, probes):
    """Every message of round ``key`` that the transcript lacks, for all models of ``pending`` at
    once through ``backend.generate_each``; each goes to the transcript as it arrives."""
    from hivemind.live.backends.server import Request, prompt_text

    made = reused = 0
    jobs = []
    for model, items in pending.items():
        asking = probes.get(model)
        for i, rec in items:
            if (*key, i) in done:
                outputs[i], reused = done[(*key, i)], reused + 1
                continue
            text = prompt_text(rec["_prefix"], rec["_suffix"])
            label = f"{key[0]} round {key[1]}, agent {rec['agent']}"
            req = Request(model, text, rec["_sampling"], rec["seed"], label, asking.request if asking else None)
            jobs.append((i, rec, req, asking))
    for k, gen in backend.generate_each([req for _, _, req, _ in jobs]):
        i, rec, _, asking = jobs[k]
        rec = _generated(rec, gen, scaffold, spec.clean, 0, asking)
        # The prompt's length in the server's tokens; the characters the budget counted instead.
        rec["prompt_chars"] = rec.pop("prompt_tokens")
        rec.pop("prefix_tokens", None)
        rec["prompt_tokens"] = gen.prompt_tokens
        transcript.append(rec)
        outputs[i], made = rec, made + 1
    return made, reused


def _generated(rec: dict, gen, scaffold, clean: bool, batch_size: int, asking: Asking | None = None) -> dict:
    """A generated message's record: its text (cleaned of prompt scaffolding) and how it was decoded."""
    rec = {k: v for k, v in rec.items() if not k.startswith("_")}
    cleaned = scaffold.clean(gen.text)
    text = cleaned.text if clean else gen.text
    if cleaned.malformed:  # the raw output stays in the transcript beside what was kept
        rec |= {"raw_text": cleaned.raw, "removed": list(cleaned.removed)}
    rec |= {
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
    if asking is not None and gen.probe is not None:
        rec |= asking.reading(gen.probe)
    return rec


def _speak(latest: dict, outputs: dict, agents: list[int], rnd: int, spec: LiveSpec, labels: list[str]) -> None:
    """The simultaneous update: every agent's state becomes its message of this round (nobody
    saw this round's messages while writing theirs); an empty message keeps the last state."""
    for k, i in enumerate(agents):
        if outputs[i]["text"]:
            latest[i] = (outputs[i]["text"], rnd)
        elif rnd == 0 and spec.persona_of(k, labels[i]).strip():
            # An agent silent from the start speaks its persona: it needs a first state.
            latest[i] = (spec.persona_of(k, labels[i]), 0)
    if any(i not in latest for i in agents):
        silent = labels[next(i for i in agents if i not in latest)]
        raise LiveError(f"agent {silent} wrote nothing in round 0 and has no persona, so it has no message to start from")


def _round(decoding, rnd, texts, vectors, anchor_vec, recs, names, spec, conversations) -> Round:
    """The round's measures, for the population and per agent (see ``Round``)."""
    m = round_metrics(texts, spec.anchor_text, spec.rule)
    jaccard = m.pop("jaccard_per_agent", None)
    per_agent: dict[str, list] = {}
    metrics = dict(m)
    compliant = None
    if spec.rule is not None:
        compliant = [bool(spec.rule.check(t)) for t in texts]
        per_agent["compliant"] = [int(c) for c in compliant]
    distances = None
    if anchor_vec is not None:
        distances = geodesic(vectors, anchor_vec)
        per_agent["jaccard_to_anchor"] = jaccard
        per_agent["embedding_distance_to_anchor"] = distances.tolist()
        metrics["embedding_distance_to_anchor"] = float(np.mean(distances))
    metrics["vendi_score"] = vendi_score(vectors)
    metrics["mean_pairwise_distance"] = mean_pairwise_distance(vectors)
    if any("probe" in r for r in recs):
        for key in ("probe", "probe_entropy", "probe_mass"):
            per_agent[key] = [float(r.get(key, np.nan)) for r in recs]
        values = np.asarray(per_agent["probe"])
        metrics["probe_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        metrics["probe_sd"] = float(np.nanstd(values)) if np.isfinite(values).any() else float("nan")
        metrics["probe_mass"] = float(np.mean(per_agent["probe_mass"]))
    if conversations is not None:
        metrics |= _within(conversations, vectors, per_agent.get("probe"))
    metrics |= {
        "empty_outputs": sum(bool(r.get("empty")) for r in recs),
        # Messages of this round whose raw output held prompt scaffolding (cleaned before use unless live.clean = false).
        "malformed_outputs": sum(bool(r.get("malformed")) for r in recs),
        "truncated_prompts": sum(r.get("dropped_neighbours", 0) > 0 for r in recs),
        "dropped_neighbour_messages": sum(r.get("dropped_neighbours", 0) for r in recs),
        "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in recs),
        "completion_tokens": sum(r.get("completion_tokens", 0) for r in recs),
    }
    groups = spec.group_of
    several = groups is not None and len(set(groups)) > 1
    return Round(
        decoding,
        rnd,
        metrics,
        per_agent,
        tuple(names),
        tuple(groups) if several else None,
        tuple(conversations) if conversations is not None else None,
        _by_group(groups, texts, vectors, distances, jaccard, compliant, per_agent.get("probe")) if several else {},
    )


def _within(conversations, vectors, probe) -> dict:
    """Agreement inside the discussions: the mean geodesic distance between two agents of one
    discussion, and the mean absolute gap between their probes, over all such pairs."""
    c = np.asarray(conversations)
    i, j = np.nonzero((c[:, None] == c[None, :]) & np.triu(np.ones((c.size, c.size), bool), 1))
    out = {}
    if i.size:
        out["within_discussion_distance"] = float(np.mean(geodesic(vectors[i], vectors[j])))
        if probe is not None:
            gap = np.abs(np.asarray(probe)[i] - np.asarray(probe)[j])
            out["within_discussion_probe_gap"] = float(np.nanmean(gap)) if np.isfinite(gap).any() else float("nan")
    return out


def _by_group(groups, texts, vectors, distances, jaccard, compliant, probe) -> dict:
    """The round's measures within each group of agents."""
    out = {}
    for g in dict.fromkeys(groups):
        k = [i for i, h in enumerate(groups) if h == g]
        mine = [texts[i] for i in k]
        out[g] = {"agents": len(k)}
        if compliant is not None:
            out[g]["compliance"] = float(np.mean([compliant[i] for i in k]))
        if distances is not None:
            out[g]["jaccard_to_anchor"] = float(np.mean([jaccard[i] for i in k]))
            out[g]["embedding_distance_to_anchor"] = float(np.mean(distances[k]))
        if probe is not None:
            out[g]["probe_mean"] = float(np.nanmean(np.asarray(probe)[k]))
        out[g] |= {
            "vendi_score": vendi_score(vectors[k]),
            "mean_pairwise_distance": mean_pairwise_distance(vectors[k]),
            "distinct_outputs": len({state_id(t) for t in mine}),
        }
    return out


def _message(scenario, backend, sampling, wrap, budget, shared, rnd, i, k, labels, hears, latest, asking=None) -> dict:
    """The transcript record of agent ``i``'s message in round ``rnd``, before generation (a given
    first message is probed after the opening prompt, as if the agent had written it)."""
    spec = scenario.live
    rec = {
        "kind": "message",
        "decoding": sampling.decoding,
        "round": rnd,
        "agent": labels[i],
        "index": i,
        "sampling": sampling.to_dict(),
    }
    given = rnd == 0 and spec.initial_texts is not None
    if given:
        text = spec.initial_texts[k]
        rec |= {"generated": False, "text": text, "sha256": state_id(text), "empty": not text.strip()}
        if asking is None:
            return rec
    persona = spec.persona_of(k, labels[i])
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
    if given:
        return rec | {"_prefix": prompt.prefix_tokens, "_suffix": prompt.suffix_tokens}
    return rec | {
        "generated": True,
        "prompt_sha256": hashlib.sha256(prompt.text.encode()).hexdigest(),
        "prompt_tokens": len(prompt.prefix_tokens) + len(prompt.suffix_tokens),
        "prefix_tokens": len(prompt.prefix_tokens),
        "dropped_neighbours": prompt.dropped,
        "_prefix": prompt.prefix_tokens,
        "_suffix": prompt.suffix_tokens,
    }
