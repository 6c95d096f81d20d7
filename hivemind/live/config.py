"""The ``[live]`` section of a scenario: which model, how many rounds, how to decode, what the anchor says.

The graph, the anchor node and the agents come from the scenario's usual sections;
``[live]`` adds the text side. Every key is declared once (``LIVE_KEYS``: type, default,
check, reference), and ``parse_live`` reads it through the scenario reader, so every
problem is a ``ScenarioError`` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from typing import Any

from hivemind.live.compliance import Rule, RuleError, parse_rule
from hivemind.live.probe import FORMS
from hivemind.live.prompts import (
    AGENT_FIELDS,
    DEFAULT_OPENING,
    DEFAULT_PROMPT,
    DISCUSSION_OPENING,
    DISCUSSION_PROMPT,
    LINE_FIELDS,
    NEIGHBOUR_LINE,
    STANCE_FIELDS,
    STANCE_PROMPT,
    STANCE_WORDS,
    TemplateError,
    check_template,
)
from hivemind.scenario import Reader, Scenario, ScenarioError, node_index, typed
from hivemind.scenario.keys import Key, in_unit_interval
from hivemind.scenario.reader import at_least, nonnegative, one_of

DECODINGS = ("greedy", "stochastic")
DEFAULT_ROUNDS = 4
DEFAULT_MODEL = "default"
# Keys added after transcripts were written: left out of to_dict (and so of the fingerprint) at
# their default, so that a transcript written before them still resumes.
ADDED_WITH_DEFAULTS = (
    "probe_every",
    "chat_models",
    "clean",
    "groups",
    "backend",
    "endpoints",
    "api_key_env",
    "concurrency",
    "timeout",
    "retries",
    "server_extras",
    "topic",
    "stances",
    "stance_prompt",
    "probe",
    "probe_form",
    "probe_statement",
)
# How the texts are produced, not which: a run started with 8 threads resumes with 4. (With
# greedy decoding llama.cpp's sums may round differently, so texts after the resume may differ.)
EXECUTION_KEYS = ("threads", "batch", "endpoints", "api_key_env", "concurrency", "timeout", "retries")
BACKENDS = ("llama", "openai")
# What is computed after the conversation, from its transcript: changing it keeps the transcript.
AFTER_KEYS = ("fit", "embedding_model", "groups")
# llama.cpp's llama_max_parallel_sequences(): the most sequences one context decodes.
MAX_SEQUENCES = 256


@dataclass(frozen=True)
class Sampling:
    """How one message is decoded; ``greedy`` ignores temperature, top_p and top_k."""

    decoding: str = "greedy"
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    max_tokens: int = 48
    stop: tuple[str, ...] = ("\n",)

    @property
    def greedy(self) -> bool:
        return self.decoding == "greedy"

    def to_dict(self) -> dict:
        if self.greedy:
            return {"decoding": "greedy", "max_tokens": self.max_tokens, "stop": list(self.stop)}
        return {
            "decoding": "stochastic",
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
        }


@dataclass(frozen=True)
class LiveSpec:
    """The resolved ``[live]`` section; per-agent lists are in the order of the peripheral agents."""

    model: str  # "default" or a path to a GGUF file (relative paths resolve against the scenario's folder)
    rounds: int
    decodings: tuple[str, ...]
    anchor_text: str | None  # None: a discussion without an anchor
    rule_spec: Any  # the rule as written (plain data, for the fingerprint); None: no rule (only without an anchor)
    personas: tuple[str, ...] | None
    initial_texts: tuple[str, ...] | None
    prompt: str
    opening_prompt: str
    seed: int = 0
    neighbour_line: str = NEIGHBOUR_LINE
    clean: bool = True  # strip prompt scaffolding from messages (it is counted either way)
    max_tokens: int = Sampling.max_tokens
    temperature: float = Sampling.temperature
    top_p: float = Sampling.top_p
    top_k: int = Sampling.top_k
    stop: tuple[str, ...] = Sampling.stop
    n_ctx: int = 2048
    threads: int = 2
    chat: str = "auto"
    batch: bool | int = True  # True: a round's agents in one batch; False: one after another; K: K agents per batch
    models: tuple[str, ...] | None = None  # per peripheral agent, when they differ
    temperatures: tuple[float, ...] | None = None  # per peripheral agent, when they differ
    embedding_model: str = "minilm"  # "self": the first agent's generation model embeds; see live.embedders
    fit: bool = True  # fit the models of theory.fitting to each decoding's embeddings after the run
    groups: tuple[str, ...] | None = None  # per peripheral agent: who is measured and fitted together
    backend: str = "llama"  # "llama": llama.cpp in this process; "openai": OpenAI-compatible servers
    endpoints: tuple[str, ...] = ()  # the servers' base URLs (".../v1"), requests spread over them
    api_key_env: str | None = None  # the environment variable that holds the API key (the key is never stored)
    concurrency: int = 4  # requests in flight per endpoint
    timeout: float = 120.0  # seconds per request before it counts as failed
    retries: int = 3  # further tries of a failed request, with back-off
    server_extras: bool = True  # send top_k, min_p and repeat_penalty (llama.cpp's and vLLM's) besides OpenAI's fields
    chat_models: tuple[tuple[str, str], ...] | None = None  # live.chat as a table: (model as written, "auto"/"none")
    topic: str = ""  # what the discussion is about: the shared prompt's {topic}, required without an anchor
    stances: tuple[int, ...] | None = None  # per peripheral agent, on -2..2: written into its persona
    stance_prompt: str = STANCE_PROMPT
    probe: bool = False  # ask every agent after every message how much it agrees (hivemind.live.probe)
    probe_form: str = "auto"  # a form of hivemind.live.probe.FORMS, or "auto": the best on the check set per model
    probe_statement: str | None = None  # what the probe and the stances are about (default: the anchor's message)
    probe_every: int = 1  # probe rounds 0, k, 2k, ... and the last (long runs: the question costs prompt tokens)
    rule: Rule | None = field(default=None, compare=False, repr=False)

    @property
    def anchored(self) -> bool:
        return self.anchor_text is not None

    @property
    def statement(self) -> str | None:
        """What the agents are asked about and take stances on: ``live.probe_statement``, else the anchor's message."""
        return self.probe_statement or self.anchor_text

    def persona_of(self, agent: int, name: str) -> str:
        """Peripheral agent number ``agent``'s persona (``name``: its label): ``live.personas``, then its
        stance (``live.stance_prompt``)."""
        parts = [self.personas[agent]] if self.personas is not None else []
        if self.stances is not None:
            value = self.stances[agent]
            words = STANCE_WORDS[value]
            parts.append(self.stance_prompt.format(agent=name, stance=words, statement=self.statement, value=value))
        return " ".join(p for p in parts if p)

    def sampling(self, decoding: str, agent: int | None = None) -> Sampling:
        """How peripheral agent number ``agent`` (in graph order) decodes; a temperature of 0 is greedy."""
        t = self.temperature if self.temperatures is None or agent is None else self.temperatures[agent]
        if decoding == "stochastic" and t == 0:
            decoding = "greedy"
        return Sampling(decoding, t, self.top_p, self.top_k, self.max_tokens, self.stop)

    def chat_of(self, model: str) -> str:
        """Whether ``model`` (as written) gets its chat template: ``live.chat``, or its entry in the table."""
        return dict(self.chat_models or ()).get(model, self.chat)

    def model_of(self, agent: int) -> str:
        """The model (as written) of peripheral agent number ``agent``."""
        return self.model if self.models is None else self.models[agent]

    @property
    def group_of(self) -> tuple[str, ...] | None:
        """Each peripheral agent's group: ``live.groups``, else its model as written when the
        models differ, else None (one population)."""
        if self.groups is not None:
            return self.groups
        return self.models

    @property
    def distinct_models(self) -> tuple[str, ...]:
        """Every generation model once, in the order agents first use it."""
        return tuple(dict.fromkeys(self.models or (self.model,)))

    def probed(self, rnd: int) -> bool:
        """Whether round ``rnd``'s messages are probed: every ``live.probe_every``-th round from 0, and the last."""
        return self.probe and (rnd % self.probe_every == 0 or rnd == self.rounds)

    def batch_size(self, agents: int) -> int:
        """How many agents one call decodes (0: the sequential path)."""
        if self.batch is False:
            return 0
        return max(1, min(agents, MAX_SEQUENCES if self.batch is True else int(self.batch)))

    def identity(self) -> dict:
        """``to_dict`` less what does not decide the texts: the scenario's fingerprint hashes this."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_KEYS + AFTER_KEYS}

    def execution(self) -> dict:
        """The settings that say how the texts are produced (recorded, free to change on resume)."""
        out = self.to_dict()
        return {k: out[k] for k in EXECUTION_KEYS if k in out}

    def to_dict(self) -> dict:
        """Plain data for the manifest: the rule as written, tuples as lists."""
        out = {}
        for f in fields(self):
            if f.name == "rule" or (f.name in ADDED_WITH_DEFAULTS and getattr(self, f.name) == f.default):
                continue
            value = getattr(self, f.name)
            out["rule" if f.name == "rule_spec" else f.name] = list(value) if isinstance(value, tuple) else value
        return out


# Every [live] default, stated once: the LiveSpec fields' (parse_live reads them from here).
DEFAULT = {f.name: f.default for f in fields(LiveSpec) if f.default is not dataclasses.MISSING}


# ---------------------------------------------------------------------------
# Every [live] key, declared once: how it is typed, its default (LiveSpec's), its check, and
# what the reference says of it. ``parse_live`` reads keys only through these declarations.


def _model_path(v) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a path to a GGUF file or 'default'"


def _temperature(v) -> str | None:
    return None if v >= 0 else "must be >= 0 (0: greedy)"


def _top_k(v) -> str | None:
    return None if v >= 0 else "must be >= 0 (0: no limit)"


def _nonempty(v) -> str | None:
    return None if v.strip() else "must not be empty"


def _embedder(v) -> str | None:
    return None if v.strip() else "must be 'minilm', 'self', a named model, or a path to a GGUF or ONNX file"


def _variable(v) -> str | None:
    return None if v.strip() else "must name an environment variable"


def _seconds(v) -> str | None:
    return None if v > 0 else "must be > 0 seconds"


def _between(lo: int, hi: int):
    return lambda v: None if lo <= v <= hi else f"must be from {lo} to {hi}"


def _stance(v) -> str | None:
    return None if -2 <= v <= 2 else "must be an integer from -2 to 2"


def _batch(v) -> str | None:
    if isinstance(v, bool) or (isinstance(v, int) and 1 <= v <= MAX_SEQUENCES):
        return None
    return (
        f"must be true, false or a number of agents per batch from 1 to {MAX_SEQUENCES} "
        "(llama.cpp's most sequences in one context)"
    )


# What a server key's example needs beside it: the reference parses every key with its example.
SERVED = ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"')


def _d(name: str) -> str:
    import json

    v = DEFAULT[name]
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        v = list(v)
    return json.dumps(v) if isinstance(v, (str, list)) else str(v)


LIVE_KEYS: tuple[Key, ...] = (
    Key(
        "live.model",
        "string or list",
        f'"{DEFAULT_MODEL}"',
        '"default"/"gemma3", "smollm2", a GGUF path; or one per agent',
        "the language model of every agent (a list or { node = ... } gives each its own)",
        '"default"',
        value=DEFAULT_MODEL,
        check=_model_path,
    ),
    Key(
        "live.rounds",
        "integer",
        str(DEFAULT_ROUNDS),
        ">= 1",
        "rounds of conversation after round 0",
        "2",
        kind="int",
        value=DEFAULT_ROUNDS,
        check=at_least(1),
    ),
    Key(
        "live.decoding",
        "string or list",
        '"greedy"',
        ", ".join(DECODINGS),
        "the decodings to run, each a whole conversation",
        '"greedy"',
        value="greedy",
    ),
    Key(
        "live.seed",
        "integer",
        _d("seed"),
        "any",
        "each message's sampling seed is this key folded with (decoding, round, agent)",
        "3",
        kind="int",
        value=DEFAULT["seed"],
        check=nonnegative,
    ),
    Key(
        "live.max_tokens",
        "integer",
        _d("max_tokens"),
        ">= 1",
        "the longest message, in tokens",
        "16",
        kind="int",
        value=DEFAULT["max_tokens"],
        check=at_least(1),
    ),
    Key(
        "live.temperature",
        "number or list",
        _d("temperature"),
        ">= 0, one per agent",
        "stochastic decoding's temperature",
        "0.5",
        value=DEFAULT["temperature"],
        check=_temperature,
    ),
    Key(
        "live.top_p",
        "number",
        _d("top_p"),
        "(0, 1]",
        "nucleus sampling's mass",
        "0.9",
        kind="float",
        value=DEFAULT["top_p"],
        check=in_unit_interval,
    ),
    Key(
        "live.top_k",
        "integer",
        _d("top_k"),
        ">= 0",
        "sampling among the k likeliest tokens (0: all)",
        "20",
        kind="int",
        value=DEFAULT["top_k"],
        check=_top_k,
    ),
    Key(
        "live.stop", "string or list", _d("stop"), "strings", "where a message ends", '["\\n", "."]', value=list(DEFAULT["stop"])
    ),
    Key(
        "live.n_ctx",
        "integer",
        _d("n_ctx"),
        ">= 64",
        "llama.cpp's context length in tokens",
        "1024",
        kind="int",
        value=DEFAULT["n_ctx"],
        check=at_least(64),
    ),
    Key(
        "live.threads",
        "integer",
        _d("threads"),
        ">= 1",
        "llama.cpp's CPU threads",
        "1",
        kind="int",
        value=None,
        check=at_least(1),
    ),
    Key(
        "live.batch",
        "boolean or integer",
        _d("batch"),
        "true, false, K >= 1",
        "a round's agents decoded together in one batch, one after another, or K per batch",
        "4",
        value=DEFAULT["batch"],
        check=_batch,
    ),
    Key(
        "live.chat",
        "string or table",
        _d("chat"),
        '"auto", "none", or { model = "auto"|"none" }',
        "wrap prompts in the model's chat template when it has one",
        '"none"',
        value=DEFAULT["chat"],
    ),
    Key(
        "live.anchor_text",
        "string",
        "required with an anchor",
        "any",
        "what the anchor says, every round",
        '"Follow the river."',
        kind="str",
        check=_nonempty,
    ),
    Key(
        "live.rule",
        "table or list of tables",
        "required with an anchor",
        "kinds: phrase (text), max_words (n), sentence, ...",
        "the compliance rule the anchor sets",
        '{ kind = "phrase", text = "the river" }',
    ),
    Key(
        "live.topic",
        "string",
        _d("topic"),
        "any",
        "what the discussion is about: the prompt's {topic} (required without an anchor)",
        '"rivers"',
        kind="str",
        value=DEFAULT["topic"],
        check=_nonempty,
    ),
    Key(
        "live.personas",
        "list or table",
        "-",
        "one string per peripheral agent",
        "who each agent is, written into its prompt",
        '["a cautious guide", "a bold scout", "a tired cook", "a calm judge", "a loud sailor", "a quiet poet", "a young pilot", '
        '"an old farmer"]',
        value=None,
    ),
    Key(
        "live.initial_texts",
        "list or table",
        "-",
        "one string per peripheral agent",
        "each agent's round-0 message (not generated)",
        '["a", "b", "c", "d", "e", "f", "g", "h"]',
        value=None,
    ),
    Key(
        "live.groups",
        "list or table",
        "- (the agents' models)",
        "one name per peripheral agent",
        "who is measured and fitted together (who pulls whom)",
        '["x", "x", "x", "x", "y", "y", "y", "y"]',
        value=None,
    ),
    Key(
        "live.stances",
        "list or table",
        "-",
        "integers -2..2, one per peripheral agent",
        "an assigned stance on the statement, written into each persona",
        "[-2, -1, 0, 1, 2, 2, 1, 0]",
        value=None,
        check=_stance,
    ),
    Key(
        "live.stance_prompt",
        "string",
        _d("stance_prompt"),
        "a template with {stance}",
        "how a stance is written into a persona",
        '"{agent} {stance} this: {statement}"',
        kind="str",
        value=DEFAULT["stance_prompt"],
    ),
    Key(
        "live.probe",
        "boolean",
        _d("probe"),
        "true, false",
        "ask every agent after every message how much it agrees (-2..2)",
        "true",
        kind="bool",
        value=DEFAULT["probe"],
    ),
    Key(
        "live.probe_form",
        "string",
        _d("probe_form"),
        '"auto", "own", "judge", "own_yes_no", "judge_yes_no"',
        "how the probe asks; auto: the best form on the check set, per model",
        '"judge"',
        kind="str",
        value=DEFAULT["probe_form"],
        check=one_of(("auto", *FORMS)),
    ),
    Key(
        "live.probe_statement",
        "string",
        "- (live.anchor_text)",
        "any",
        "what the probe and the stances are about",
        '"Rivers lead home."',
        kind="str",
        value=None,
        check=_nonempty,
    ),
    Key(
        "live.probe_every",
        "integer",
        _d("probe_every"),
        ">= 1, with live.probe = true",
        "probe rounds 0, k, 2k, ... and the last only (the others' probe columns are empty)",
        "2",
        ("live.probe=true",),
        kind="int",
        value=DEFAULT["probe_every"],
        check=at_least(1),
    ),
    Key(
        "live.prompt",
        "string",
        "- (the default template)",
        "a template with {anchor} and {neighbours} (with an anchor)",
        "each round's prompt",
        '"{anchor} {rule} {neighbours} {agent}:"',
        kind="str",
    ),
    Key(
        "live.opening_prompt",
        "string",
        "- (the default template)",
        "a template",
        "the round-0 prompt of an agent without an initial text",
        '"{agent}, say where to go."',
        kind="str",
    ),
    Key(
        "live.neighbour_line",
        "string",
        _d("neighbour_line"),
        "a template with {text}",
        "how each neighbour's message is written",
        '"- {text}\\n"',
        kind="str",
        value=NEIGHBOUR_LINE,
    ),
    Key(
        "live.clean",
        "boolean",
        _d("clean"),
        "true, false",
        "strip prompt scaffolding from messages (it is counted either way)",
        "false",
        kind="bool",
        value=DEFAULT["clean"],
    ),
    Key(
        "live.embedding_model",
        "string",
        _d("embedding_model"),
        '"minilm", "self", "gemma3", "smollm2", a GGUF or ONNX file, "server"',
        "what embeds every text",
        '"minilm"',
        kind="str",
        value=DEFAULT["embedding_model"],
        check=_embedder,
    ),
    Key(
        "live.fit",
        "boolean",
        _d("fit"),
        "true, false",
        "fit the models of hivemind fit to each decoding's embeddings afterwards (one conversation, held out by rounds)",
        "false",
        kind="bool",
        value=DEFAULT["fit"],
    ),
    Key(
        "live.backend",
        "string",
        _d("backend"),
        '"llama", "openai"',
        "llama.cpp in this process, or OpenAI-compatible servers",
        '"openai"',
        ('live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
        kind="str",
        value=DEFAULT["backend"],
        check=one_of(BACKENDS),
    ),
    Key(
        "live.endpoints",
        "list of strings",
        "[]",
        "base URLs ending in /v1",
        "the servers, requests spread over them",
        '["http://127.0.0.1:9/v1"]',
        ('live.backend="openai"', 'live.model="served-model"'),
        value=None,
    ),
    Key(
        "live.api_key_env",
        "string",
        "-",
        "an environment variable's name",
        "where the API key is (the key is never written)",
        '"HIVEMIND_TEST_KEY"',
        SERVED,
        kind="str",
        value=None,
        check=_variable,
    ),
    Key(
        "live.concurrency",
        "integer",
        _d("concurrency"),
        ">= 1",
        "requests in flight per endpoint",
        "8",
        SERVED,
        kind="int",
        value=DEFAULT["concurrency"],
        check=_between(1, 1024),
    ),
    Key(
        "live.timeout",
        "number",
        _d("timeout"),
        "> 0",
        "seconds per request before it counts as failed",
        "30.0",
        SERVED,
        kind="float",
        value=DEFAULT["timeout"],
        check=_seconds,
    ),
    Key(
        "live.retries",
        "integer",
        _d("retries"),
        ">= 0",
        "further tries of a failed request, with back-off",
        "1",
        SERVED,
        kind="int",
        value=DEFAULT["retries"],
        check=_between(0, 20),
    ),
    Key(
        "live.server_extras",
        "boolean",
        _d("server_extras"),
        "true, false",
        "send top_k, min_p and repeat_penalty besides OpenAI's fields",
        "false",
        SERVED,
        kind="bool",
        value=DEFAULT["server_extras"],
    ),
)

LIVE = {k.name: k for k in LIVE_KEYS}
SERVER_KEYS = ("endpoints", "api_key_env", "concurrency", "timeout", "retries", "server_extras")
RETIRED_KEYS = ("fit_resamples", "fit_free_running")


def _per_agent(r, key: str, labels: list, anchor: int, kind: str = "str", what: str = "text"):
    """A value per peripheral agent, as a list in graph order or a table keyed by node label, each
    typed as ``kind`` and checked as ``live.KEY`` declares; a tuple in the order of the peripheral
    agents, None if the key is absent, or a scalar as it is (for keys that take one value for all)."""
    path = f"live.{key}"
    value = r.read(path, None, check=lambda v: None)
    if value is None:
        return None
    peripheral = [label for i, label in enumerate(labels) if i != anchor]
    if isinstance(value, list):
        if len(value) != len(peripheral):
            raise r.error(path, f"must have one {what} per peripheral agent ({len(peripheral)}), got {len(value)}")
        values, paths = value, [f"{path}[{k}]" for k in range(len(value))]
    elif isinstance(value, dict):
        by_name = {str(label): label for label in peripheral}
        unknown = [k for k in value if k not in by_name]
        if unknown:
            raise r.error(f"{path}.{unknown[0]}", "is not a peripheral agent of the graph")
        missing = [str(label) for label in peripheral if str(label) not in value]
        if missing:
            raise r.error(path, f"has no {what} for agent {missing[0]} (give one per peripheral agent)")
        values, paths = [value[str(label)] for label in peripheral], [f"{path}.{label}" for label in peripheral]
    else:
        return value
    return tuple(_one(r, p, v, kind, LIVE[path].check) for v, p in zip(values, paths, strict=True))


def _one(r, path: str, value, kind: str, check=None):
    """``value`` of key ``path`` typed as ``kind`` and checked."""
    v = typed(r, path, value, kind)
    problem = check(v) if check else None
    if problem:
        raise r.error(path, f"{problem}, got {v!r}"[:200])
    return v


def _texts(r, key: str, labels: list, anchor: int, what: str = "text") -> tuple[str, ...] | None:
    value = _per_agent(r, key, labels, anchor, "str", what=what)
    if value is not None and not isinstance(value, tuple):
        raise r.error(
            f"live.{key}", f"must be a list of strings (one per peripheral agent) or a table keyed by node, got {value!r}"[:200]
        )
    return value


def parse_live(r, labels: list, anchor: int | None) -> LiveSpec:
    """Read ``[live]`` with the scenario's reader ``r`` (declared keys: ``LIVE``); ``anchor`` is the
    anchor node's index, None for a discussion without an anchor. The keys that take one value
    per agent, and those whose meaning depends on the anchor or the backend, are read here; the
    rest as declared."""
    for gone in RETIRED_KEYS:
        if gone in r.table("live"):
            raise r.error(
                f"live.{gone}",
                "was retired: a live run is fitted as hivemind fit fits one conversation (theory.fitting: sandwich "
                "intervals, the chosen model's trajectory as the theory line); remove the key",
            )
    simple = {
        k.key: r.read(k.name)
        for k in LIVE_KEYS
        if k.kind != "any"
        and k.value is not ...
        and k.key not in (*SERVER_KEYS, "backend", "topic", "probe_statement", "threads")
    }
    models = _per_agent(r, "model", labels, anchor, "str", "model")
    if not isinstance(models, tuple):  # absent or one value for everyone
        model = _one(r, "live.model", DEFAULT_MODEL if models is None else models, "str", _model_path)
        models = None
    else:
        model = models[0]
        if len(set(models)) == 1:
            models = None
    decoding = r.read("live.decoding")
    decodings = tuple(decoding) if isinstance(decoding, list) else (decoding,)
    if not decodings or any(d not in DECODINGS for d in decodings) or len(set(decodings)) != len(decodings):
        raise r.error("live.decoding", f"must be 'greedy', 'stochastic' or a list of both, got {decoding!r}")
    temperatures = _per_agent(r, "temperature", labels, anchor, "float", "temperature")
    if not isinstance(temperatures, tuple):
        given = DEFAULT["temperature"] if temperatures is None else temperatures
        temperature = _one(r, "live.temperature", given, "float", _temperature)
        temperatures = None
    else:
        temperature = temperatures[0]
    batch = r.read("live.batch")
    stop = r.read("live.stop")
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or any(not isinstance(x, str) or not x for x in stop):
        raise r.error("live.stop", f"must be a list of non-empty strings, got {stop!r}")
    threads = r.read("live.threads", min(os.cpu_count() or 1, 8))
    chat, chat_models = _chat(r, models or (model,))
    if anchor is None:
        if r.given("live.anchor_text"):
            raise r.error("live.anchor_text", "needs an [anchor] node (without one, agents discuss live.topic)")
        anchor_text = None
        topic = r.read("live.topic", None)
        if topic is None:
            raise r.error("live.topic", "must say what the agents discuss when the scenario has no [anchor]")
        rule_spec = r.read("live.rule", None)
    else:
        anchor_text = r.read("live.anchor_text")
        topic = r.read("live.topic")
        rule_spec = r.read("live.rule")
    try:
        rule = None if rule_spec is None else parse_rule(rule_spec, "live.rule")
    except RuleError as e:
        raise r.error(e.key, e.message) from None
    probe_statement = r.read("live.probe_statement")
    if simple["probe_every"] != 1 and not simple["probe"]:
        raise r.error("live.probe_every", "applies to live.probe = true only")
    stances = _per_agent(r, "stances", labels, anchor, "int", "stance")
    if stances is not None and not isinstance(stances, tuple):
        raise r.error(
            "live.stances", f"must be a list (one per peripheral agent) or a table keyed by node, got {stances!r}"[:200]
        )
    try:
        check_template(simple["stance_prompt"], required=("stance",), known=STANCE_FIELDS)
    except TemplateError as e:
        raise r.error("live.stance_prompt", e.message) from None
    if anchor is None and (simple["probe"] or stances is not None) and probe_statement is None:
        key = "live.probe" if simple["probe"] else "live.stances"
        raise r.error(f"{key}", "needs live.probe_statement (the statement agents agree or disagree with) without an [anchor]")
    personas = _texts(r, "personas", labels, anchor)
    groups = _texts(r, "groups", labels, anchor, what="group")
    if groups is not None:
        for k, g in enumerate(groups):
            if not g.strip():
                raise r.error("live.groups", f"entry {k} is empty; name every agent's group (a model family, a persona)")
    initial = _texts(r, "initial_texts", labels, anchor)
    if initial is not None:
        for k, t in enumerate(initial):
            if not t.strip():
                raise r.error("live.initial_texts", f"entry {k} is empty; every agent needs a first message")
    if personas is None and initial is None and stances is None:
        raise r.error("live", "needs personas, stances or initial_texts (one per peripheral agent) to start the conversation")
    prompt = r.read("live.prompt", DEFAULT_PROMPT if anchor is not None else DISCUSSION_PROMPT)
    opening = r.read("live.opening_prompt", DEFAULT_OPENING if anchor is not None else DISCUSSION_OPENING)
    _check_templates(r, prompt, opening, simple["neighbour_line"], anchor is not None, rule is not None)
    return LiveSpec(
        **simple,
        **_server(r, models or (model,)),
        model=model,
        decodings=decodings,
        anchor_text=anchor_text,
        rule_spec=rule_spec,
        personas=personas,
        initial_texts=initial,
        prompt=prompt,
        opening_prompt=opening,
        temperature=temperature,
        stop=tuple(stop),
        threads=threads,
        chat=chat,
        chat_models=chat_models,
        batch=batch,
        models=models,
        temperatures=temperatures,
        groups=groups,
        topic=topic,
        stances=stances,
        probe_statement=probe_statement,
        rule=rule,
    )


def _check_templates(r, prompt: str, opening: str, line: str, anchored: bool, ruled: bool) -> None:
    """The prompts name only fields that exist: without an anchor no {anchor}, without a rule no {rule}."""
    known = ("topic", *(("anchor",) if anchored else ()), *(("rule",) if ruled else ()), *AGENT_FIELDS)
    try:
        check_template(prompt, required=("anchor", "neighbours") if anchored else ("neighbours",), known=known)
        check_template(opening, required=(), known=known)
    except TemplateError as e:
        key = "live.prompt" if e.template == prompt else "live.opening_prompt"
        raise r.error(key, e.message) from None
    try:
        check_template(line, required=("text",), known=LINE_FIELDS)
    except TemplateError as e:
        raise r.error("live.neighbour_line", e.message) from None


def _chat(r, models) -> tuple[str, tuple[tuple[str, str], ...] | None]:
    """``live.chat``: "auto" or "none" for every model, or a table by model as written (a mixed
    population whose models want different prompts; models left out get "auto")."""
    value = r.read("live.chat")
    if isinstance(value, str):
        if value not in ("auto", "none"):
            raise r.error("live.chat", f"must be 'auto' or 'none' (or a table of them by model), got {value!r}"[:200])
        return value, None
    if not isinstance(value, dict):
        raise r.error("live.chat", f"must be 'auto', 'none' or a table of them by model, got {value!r}"[:200])
    known = list(dict.fromkeys(models))
    for k, v in value.items():
        if k not in known:
            raise r.error(f"live.chat.{k}", f"is not a model of live.model (models: {', '.join(known)})"[:200])
        if v not in ("auto", "none"):
            raise r.error(f"live.chat.{k}", f"must be 'auto' or 'none', got {v!r}"[:200])
    return "auto", tuple((k, value[k]) for k in known if k in value)


def _server(r, models) -> dict:
    """The server keys (``live.backend = "openai"``): which servers, how hard to press them."""
    backend = r.read("live.backend")
    if backend != "openai":
        given = [k for k in SERVER_KEYS if r.given(f"live.{k}")]
        if given:
            raise r.error(f"live.{given[0]}", 'applies to live.backend = "openai" only')
        return {}
    endpoints = r.read("live.endpoints")
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    if not isinstance(endpoints, list) or not endpoints:
        raise r.error(
            "live.endpoints", 'must list the servers\' URLs for live.backend = "openai", e.g. ["http://127.0.0.1:8080/v1"]'
        )
    for k, url in enumerate(endpoints):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) < 10:
            raise r.error(f"live.endpoints[{k}]", f"must be an http:// or https:// URL, got {url!r}"[:200])
    if len(set(endpoints)) != len(endpoints):
        raise r.error("live.endpoints", "names one server twice")
    for m in dict.fromkeys(models):
        if m == DEFAULT_MODEL:
            raise r.error("live.model", 'must name the model the servers serve (as GET /v1/models lists it), not "default"')
    return {
        "backend": backend,
        "endpoints": tuple(u.rstrip("/") for u in endpoints),
        **{k: r.read(f"live.{k}") for k in ("api_key_env", "concurrency", "timeout", "retries", "server_extras")},
    }


def read_live(scenario: Scenario) -> Scenario:
    """``scenario`` with its ``[live]`` table read into a ``LiveSpec`` (unchanged if it has none or was read).

    Raises ``ScenarioError`` naming the file and the ``live.`` key, like the rest of the scenario.
    """
    if scenario.live is None or isinstance(scenario.live, LiveSpec):
        return scenario
    if not isinstance(scenario.live, dict):
        raise ScenarioError(scenario.source, "live", f"must be a table ([live]), got {scenario.live!r}"[:200])
    r = Reader(scenario.source or "<scenario>", {"live": scenario.live}, LIVE)
    labels = scenario.arrays.labels
    spec = parse_live(r, labels, node_index(labels, scenario.anchors[0].node) if scenario.anchors else None)
    r.finish(("live",))
    return dataclasses.replace(scenario, live=spec)


def load_scenario(path, overrides=()) -> Scenario:
    """A scenario file read whole, ``[live]`` included: what ``hivemind.load_scenario`` is.

    ``hivemind.scenario.load_scenario`` leaves ``[live]`` as a table (the scenario layer knows
    nothing of language models); this reads it too, so a bad ``live.`` key fails here.
    """
    from hivemind.scenario import load_scenario as load_without_live

    return read_live(load_without_live(path, overrides))


def parse_scenario(text: str, file: str = "<scenario>", base=None, overrides=(), seeds=None) -> Scenario:
    """``hivemind.scenario.parse_scenario`` with ``[live]`` read (``hivemind.parse_scenario``)."""
    from hivemind.scenario import parse_scenario as parse_without_live

    return read_live(parse_without_live(text, file=file, base=base, overrides=overrides, seeds=seeds))
