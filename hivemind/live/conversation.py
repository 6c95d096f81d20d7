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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hivemind.errors import InputError
from hivemind.live.backends.base import Backend, Embedder, Generation, Population, ProbeRequest, Request
from hivemind.live.cleaner import Scaffold
from hivemind.live.config import DECODINGS, LiveSpec, read_live
from hivemind.live.metrics import mean_pairwise_distance, round_metrics, state_id, vendi_score
from hivemind.live.probe import LOW_MASS, Form, read
from hivemind.live.prompts import Prompt, PromptTooLong, build_prompt
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
    """Each agent's discussion (a weakly connected component of who hears whom, numbered by its
    first agent in graph order); None when everyone is in one discussion."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = {i: k for k, i in enumerate(agents)}
    rows = [index[i] for i in agents for _ in hears[i]]
    cols = [index[j] for i in agents for j in hears[i]]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(agents), len(agents)))
    n, labels = connected_components(graph, directed=True, connection="weak")
    if n < 2:
        return None
    number = {c: k for k, c in enumerate(dict.fromkeys(labels.tolist()))}
    return [number[c] for c in labels.tolist()]


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


class Embeddings:
    """Unit-norm embeddings, each text embedded once."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.cache:
            self.cache[text] = _unit(np.asarray(self.embedder.embed(text), dtype=np.float64))
        return self.cache[text]


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


@dataclass(frozen=True)
class Pending:
    """A message of a round before it is in the transcript: the agent's node index, its record so
    far (the transcript line without what generation adds) and the prompt to decode or probe."""

    index: int
    record: dict
    request: Request


@dataclass
class Room:
    """What every round of a run reads: who speaks, who hears whom, the prompts' shared pieces,
    the backends, and the messages the transcript already holds."""

    scenario: Scenario
    population: Population
    probes: dict[str, Asking]
    labels: list[str]
    agents: list[int]
    hears: dict[int, list[int]]
    conversations: list[int] | None
    seeds: np.ndarray
    wraps: dict[str, tuple[str, str]]
    scaffold: Scaffold
    shared: dict[str, str]
    done: dict[tuple, dict]
    embed: Embeddings
    anchor_vec: np.ndarray | None

    @property
    def spec(self) -> LiveSpec:
        return self.scenario.live

    @classmethod
    def of(
        cls,
        scenario: Scenario,
        backend: Backend | Population,
        records: Sequence[dict] = (),
        probes: dict[str, Asking] | None = None,
    ) -> Room:
        """The run's fixed parts, with the messages of ``records`` (a transcript's) as done; embeds the
        anchor (or the topic) first, so that a broken embedder fails before round 0."""
        scenario = read_live(scenario)
        spec: LiveSpec = scenario.live
        pop = Population.of(spec, backend)
        labels = [str(v) for v in scenario.arrays.labels]
        anchor = anchor_of(scenario)
        agents = [i for i in range(len(labels)) if i != anchor]
        hears = in_neighbours(scenario)
        embed = Embeddings(pop.embedder)
        try:
            anchor_vec = embed(spec.anchor_text) if spec.anchored else None
            if anchor_vec is None:
                embed(spec.topic)
        except LiveError as e:
            raise LiveError(f"{scenario.source}: {embedder_key(spec)}: {e} (it gives no usable embeddings)") from None
        return cls(
            scenario=scenario,
            population=pop,
            probes=probes or {},
            labels=labels,
            agents=agents,
            hears=hears,
            # An anchor heard by everyone joins them all into one discussion.
            conversations=discussions(hears, agents) if anchor is None else None,
            seeds=message_seeds(spec.seed, spec.decodings, spec.rounds, len(labels)),
            wraps={m: b.chat_wrap() for m, b in pop.generators.items()},
            scaffold=Scaffold.of((spec.prompt, spec.opening_prompt, spec.neighbour_line), labels),
            shared={"anchor": spec.anchor_text or "", "rule": spec.rule.describe() if spec.rule else "", "topic": spec.topic},
            done={(r["decoding"], r["round"], r["index"]): r for r in records},
            embed=embed,
            anchor_vec=anchor_vec,
        )

    def message(self, k: int, i: int, decoding: str, rnd: int, latest: dict) -> tuple[dict, Request | None]:
        """Agent ``i``'s (the ``k``-th agent's) transcript record of round ``rnd`` before generation, and
        the request that writes it or, for a given message that is probed, the prompt it is probed after
        (None for a given message that is not). ``latest``: agent -> (its latest text, round written)."""
        spec = self.spec
        model = spec.model_of(k)
        b = self.population.generators[model]
        sampling = spec.sampling(decoding, k)
        asking = self.probes.get(model) if spec.probed(rnd) else None
        # The probe's question follows the message in the same window.
        budget = b.n_ctx - spec.max_tokens - (len(asking.request.question) + 1 if asking else 0)
        rec, prompt = _message(self, b, sampling, self.wraps[model], budget, rnd, i, k, latest)
        seed = int(self.seeds[spec.decodings.index(decoding), rnd, i])
        # The run's decoding, even for an agent whose temperature 0 makes it decode greedily.
        rec |= {"decoding": decoding, "seed": seed, "model_sha256": b.model_sha256}
        if prompt is None:
            return rec, None
        label = f"{decoding} round {rnd}, agent {self.labels[i]}"
        probe = asking.request if asking else None
        return rec, Request(model, prompt.prefix_tokens, prompt.suffix_tokens, sampling, seed, label, probe)


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
    room = Room.of(scenario, backend, transcript.records, probes)
    spec = room.spec
    trajectories = []
    for decoding in spec.decodings:
        traj = Trajectory(decoding, room.agents, [], [], [], room.anchor_vec, room.conversations, spec.stances)
        trajectories.append(traj)
        latest: dict[int, tuple[str, int]] = {}  # agent -> (text, round written)
        for rnd in range(spec.rounds + 1):
            t0 = time.perf_counter()
            outputs, made, reused = _write_round(room, transcript, decoding, rnd, latest)
            _speak(latest, outputs, room.agents, rnd, spec, room.labels)
            row = _measure_round(room, traj, decoding, rnd, latest, outputs)
            if on_round is not None:
                on_round(trajectories)
            what = f"{made} written" + (f", {reused} from the transcript" if reused else "")
            say(f"  {decoding} round {rnd}/{spec.rounds}: {what}; {describe_round(row)} ({time.perf_counter() - t0:.1f} s)")
    return trajectories


def _write_round(room: Room, transcript: Transcript, decoding: str, rnd: int, latest: dict) -> tuple[dict, int, int]:
    """Every agent's message of round ``rnd``: taken from the transcript, given, or generated (each
    backend's messages together); returns (agent -> record, messages written, messages reused)."""
    spec, pop = room.spec, room.population
    outputs: dict[int, dict] = {}
    made = reused = 0
    to_generate: dict[int, tuple[Backend, list[Pending]]] = {}  # by backend: one may serve several models
    given: dict[str, list[Pending]] = {}  # model -> given messages to probe
    for k, i in enumerate(room.agents):
        rec, request = room.message(k, i, decoding, rnd, latest)
        model = spec.model_of(k)
        if rec["generated"]:
            b = pop.generators[model]
            to_generate.setdefault(id(b), (b, []))[1].append(Pending(i, rec, request))
        elif (decoding, rnd, i) in room.done:
            outputs[i], reused = room.done[(decoding, rnd, i)], reused + 1
        elif request is not None:
            given.setdefault(model, []).append(Pending(i, rec, request))
        else:
            transcript.append(rec)
            outputs[i], made = rec, made + 1
    for model, items in given.items():
        made += _probe_given(pop.generators[model], room.probes[model], items, outputs, transcript)
    for b, items in to_generate.values():
        m, r = _generate(room, b, items, (decoding, rnd), outputs, transcript)
        made, reused = made + m, reused + r
    return outputs, made, reused


def _measure_round(room: Room, traj: Trajectory, decoding: str, rnd: int, latest: dict, outputs: dict) -> Round:
    """Embed the round's states, measure them, and add both to the trajectory."""
    texts = [latest[i][0] for i in room.agents]
    traj.texts.append(texts)
    vectors = np.stack([room.embed(t) for t in texts])
    traj.embeddings.append(vectors)
    recs = [outputs[i] for i in room.agents]
    names = [room.labels[i] for i in room.agents]
    row = _round(decoding, rnd, texts, vectors, room.anchor_vec, recs, names, room.spec, room.conversations)
    traj.rows.append(row)
    return row


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


def _probe_given(backend: Backend, asking: Asking, items: list[Pending], outputs: dict, transcript: Transcript) -> int:
    """Probe the given (not generated) messages of one model in one call, then record them."""
    question = asking.request.question
    suffixes = [[*p.request.suffix, *backend.tokenize(p.record["text"], False), *question] for p in items]
    first = items[0].request
    probs = backend.probe(first.prefix, suffixes, asking.request.marks, first.model)
    for p, probabilities in zip(items, probs, strict=True):
        rec = p.record | asking.reading(probabilities)
        transcript.append(rec)
        outputs[p.index] = rec
    return len(items)


def _generate(
    room: Room, backend: Backend, items: list[Pending], key: tuple, outputs: dict, transcript: Transcript
) -> tuple[int, int]:
    """One backend's messages of round ``key`` = (decoding, round) that the transcript lacks, each
    recorded as it arrives; returns (written, reused). The backend decodes a batch holding a
    message the transcript has whole again, so a resumed round sees an uninterrupted one's batches."""
    spec = room.spec
    skip = {n for n, p in enumerate(items) if (*key, p.index) in room.done}
    for n in skip:
        outputs[items[n].index] = room.done[(*key, items[n].index)]
    made = 0
    for n, gen in backend.generate_each([p.request for p in items], spec.batch_size(len(items)), skip):
        p = items[n]
        rec = _generated(p.record, gen, room.scaffold, spec.clean, room.probes.get(p.request.model))
        transcript.append(rec)
        outputs[p.index], made = rec, made + 1
    return made, len(skip)


def _generated(rec: dict, gen: Generation, scaffold: Scaffold, clean: bool, asking: Asking | None = None) -> dict:
    """A generated message's record: its text (cleaned of prompt scaffolding) and how it was decoded."""
    rec = dict(rec)
    cleaned = scaffold.clean(gen.text)
    text = cleaned.text if clean else gen.text
    if cleaned.malformed:  # the raw output stays in the transcript beside what was kept
        rec |= {"raw_text": cleaned.raw, "removed": list(cleaned.removed)}
    rec |= {
        "text": text,
        "sha256": state_id(text),
        "empty": not text,
        "malformed": cleaned.malformed,
        "prompt_tokens": gen.prompt_tokens,
        **({} if gen.prefix_tokens is None else {"prefix_tokens": gen.prefix_tokens}),
        "completion_tokens": gen.completion_tokens,
        "prefix_cached": gen.prefix_cached,
        "finish_reason": gen.finish_reason,
        "batch_size": gen.batch_size,
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
    if spec.probe:  # a round left out by live.probe_every has empty probe columns
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
            gap = np.abs(np.asarray(probe, float)[i] - np.asarray(probe, float)[j])
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
            mine_p = np.asarray(probe)[k]
            out[g]["probe_mean"] = float(np.nanmean(mine_p)) if np.isfinite(mine_p).any() else float("nan")
        out[g] |= {
            "vendi_score": vendi_score(vectors[k]),
            "mean_pairwise_distance": mean_pairwise_distance(vectors[k]),
            "distinct_outputs": len({state_id(t) for t in mine}),
        }
    return out


def _message(
    room: Room, backend: Backend, sampling, wrap: tuple[str, str], budget: int, rnd: int, i: int, k: int, latest: dict
) -> tuple[dict, Prompt | None]:
    """Agent ``i``'s transcript record of round ``rnd`` before generation, and its prompt (None for
    a given first message that is not probed; a probed one is asked after the opening prompt, as
    if the agent had written it)."""
    spec, labels = room.spec, room.labels
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
        if spec.model_of(k) not in room.probes or not spec.probed(rnd):
            return rec, None
    persona = spec.persona_of(k, labels[i])
    if rnd == 0:
        template, neighbours, own = spec.opening_prompt, [], ""
    else:
        template, own = spec.prompt, latest[i][0]
        # Oldest message first, so that a prompt too long for n_ctx loses the stalest news.
        heard = sorted((latest[j][1], n, j) for n, j in enumerate(room.hears[i]) if j in latest)
        neighbours = [(labels[j], latest[j][0]) for _, _, j in heard]
    fields = {"agent": labels[i], "persona": persona, "own": own, "round": rnd}
    try:
        prompt = build_prompt(template, room.shared, fields, neighbours, backend.tokenize, budget, wrap, spec.neighbour_line)
    except PromptTooLong as e:
        raise LiveError(
            f"{room.scenario.source}: live.n_ctx = {backend.n_ctx} is too small for agent {labels[i]} in round {rnd}: {e}"
        ) from None
    if given:
        return rec, prompt
    rec |= {
        "generated": True,
        "prompt_sha256": hashlib.sha256(prompt.text.encode()).hexdigest(),
        "dropped_neighbours": prompt.dropped,
    }
    return rec, prompt
