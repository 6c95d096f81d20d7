"""The ``[live]`` section of a scenario: which model, how many rounds, how to decode, what the anchor says.

The graph, the anchor node and the agents come from the scenario's usual sections;
``[live]`` adds the text side. ``parse_live`` reads it through the scenario reader, so
every problem is a ``ScenarioError`` naming the file and the key.
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


def _per_agent(r, key: str, labels: list, anchor: int, kind: str = "str", check=None, what: str = "text"):
    """A value per peripheral agent, as a list in graph order or a table keyed by node label.

    Returns a tuple in the order of the peripheral agents, or None if ``key`` is absent.
    A scalar is returned as it is (for keys that take one value for everyone).
    """
    value = r.get("live", key, "any", None)
    if value is None:
        return None
    path = f"live.{key}"
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
    out = []
    for v, p in zip(values, paths, strict=True):
        v = typed(r, p, v, kind)
        problem = check(v) if check else None
        if problem:
            raise r.error(p, f"{problem}, got {v!r}"[:200])
        out.append(v)
    return tuple(out)


def _texts(r, key: str, labels: list, anchor: int, what: str = "text") -> tuple[str, ...] | None:
    value = _per_agent(r, key, labels, anchor, "str", what=what)
    if value is not None and not isinstance(value, tuple):
        raise r.error(
            f"live.{key}", f"must be a list of strings (one per peripheral agent) or a table keyed by node, got {value!r}"[:200]
        )
    return value


def parse_live(r, labels: list, anchor: int | None) -> LiveSpec:
    """Read ``[live]`` with the scenario's reader ``r`` (a ``scenario._Reader``); ``anchor`` is
    the anchor node's index, None for a discussion without an anchor."""

    def positive_int(v):
        return None if v >= 1 else "must be >= 1"

    def model_path(v):
        return None if v.strip() else "must be a path to a GGUF file or 'default'"

    models = _per_agent(r, "model", labels, anchor, "str", model_path, "model")
    if not isinstance(models, tuple):  # absent or one value for everyone (r.get checks its type)
        model = r.get("live", "model", "str", DEFAULT_MODEL, check=model_path)
        models = None
    else:
        model = models[0]
        if len(set(models)) == 1:
            models = None
    embedding_model = r.get(
        "live",
        "embedding_model",
        "str",
        DEFAULT["embedding_model"],
        check=lambda v: None if v.strip() else "must be 'minilm', 'self', a named model, or a path to a GGUF or ONNX file",
    )
    rounds = r.get("live", "rounds", "int", DEFAULT_ROUNDS, check=positive_int)
    decoding = r.get("live", "decoding", "any", "greedy")
    decodings = tuple(decoding) if isinstance(decoding, list) else (decoding,)
    if not decodings or any(d not in DECODINGS for d in decodings) or len(set(decodings)) != len(decodings):
        raise r.error("live.decoding", f"must be 'greedy', 'stochastic' or a list of both, got {decoding!r}")
    seed = r.get("live", "seed", "int", DEFAULT["seed"], check=lambda v: None if v >= 0 else "must be >= 0")
    max_tokens = r.get("live", "max_tokens", "int", DEFAULT["max_tokens"], check=positive_int)

    def temperature_ok(v):
        return None if v >= 0 else "must be >= 0 (0: greedy)"

    temperatures = _per_agent(r, "temperature", labels, anchor, "float", temperature_ok, "temperature")
    if temperatures is None or not isinstance(temperatures, tuple):
        temperature = r.get("live", "temperature", "float", DEFAULT["temperature"], check=temperature_ok)
        temperatures = None
    else:
        temperature = temperatures[0]
    fit = r.get("live", "fit", "bool", DEFAULT["fit"])
    for gone in ("fit_resamples", "fit_free_running"):
        if gone in r.table("live"):
            raise r.error(
                f"live.{gone}",
                "was retired: a live run is fitted as hivemind fit fits one conversation (theory.fitting: sandwich "
                "intervals, the chosen model's trajectory as the theory line); remove the key",
            )
    batch = r.get("live", "batch", "any", DEFAULT["batch"])
    if isinstance(batch, bool):
        pass
    elif isinstance(batch, int) and 1 <= batch <= MAX_SEQUENCES:
        pass
    else:
        raise r.error(
            "live.batch",
            f"must be true, false or a number of agents per batch from 1 to {MAX_SEQUENCES} "
            f"(llama.cpp's most sequences in one context), got {batch!r}"[:200],
        )
    top_p = r.get("live", "top_p", "float", DEFAULT["top_p"], check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")
    top_k = r.get("live", "top_k", "int", DEFAULT["top_k"], check=lambda v: None if v >= 0 else "must be >= 0 (0: no limit)")
    stop = r.get("live", "stop", "any", list(DEFAULT["stop"]))
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or any(not isinstance(s, str) or not s for s in stop):
        raise r.error("live.stop", f"must be a list of non-empty strings, got {stop!r}")
    n_ctx = r.get("live", "n_ctx", "int", DEFAULT["n_ctx"], check=lambda v: None if v >= 64 else "must be >= 64")
    threads = r.get("live", "threads", "int", min(os.cpu_count() or 1, 8), check=positive_int)
    chat, chat_models = _chat(r, models or (model,))

    def nonempty(v):
        return None if v.strip() else "must not be empty"

    if anchor is None:
        if r.get("live", "anchor_text", "any", None) is not None:
            raise r.error("live.anchor_text", "needs an [anchor] node (without one, agents discuss live.topic)")
        anchor_text = None
        topic = r.get("live", "topic", "str", None, check=nonempty)
        if topic is None:
            raise r.error("live.topic", "must say what the agents discuss when the scenario has no [anchor]")
        rule_spec = r.get("live", "rule", "any", None)
    else:
        anchor_text = r.get("live", "anchor_text", "str", check=nonempty)
        topic = r.get("live", "topic", "str", "", check=nonempty)
        rule_spec = r.get("live", "rule", "any")
    try:
        rule = None if rule_spec is None else parse_rule(rule_spec, "live.rule")
    except RuleError as e:
        raise r.error(e.key, e.message) from None
    probe = r.get("live", "probe", "bool", DEFAULT["probe"])
    forms = ("auto", *FORMS)
    probe_form = r.get(
        "live", "probe_form", "str", DEFAULT["probe_form"], check=lambda v: None if v in forms else f"must be one of {forms}"
    )
    probe_statement = r.get("live", "probe_statement", "str", None, check=nonempty)
    probe_every = r.get("live", "probe_every", "int", DEFAULT["probe_every"], check=positive_int)
    if probe_every != 1 and not probe:
        raise r.error("live.probe_every", "applies to live.probe = true only")
    stances = _per_agent(
        r, "stances", labels, anchor, "int", lambda v: None if -2 <= v <= 2 else "must be an integer from -2 to 2", "stance"
    )
    if stances is not None and not isinstance(stances, tuple):
        raise r.error(
            "live.stances", f"must be a list (one per peripheral agent) or a table keyed by node, got {stances!r}"[:200]
        )
    stance_prompt = r.get("live", "stance_prompt", "str", DEFAULT["stance_prompt"])
    try:
        check_template(stance_prompt, required=("stance",), known=STANCE_FIELDS)
    except TemplateError as e:
        raise r.error("live.stance_prompt", e.message) from None
    if anchor is None and (probe or stances is not None) and probe_statement is None:
        key = "live.probe" if probe else "live.stances"
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
    prompt = r.get("live", "prompt", "str", DEFAULT_PROMPT if anchor is not None else DISCUSSION_PROMPT)
    opening = r.get("live", "opening_prompt", "str", DEFAULT_OPENING if anchor is not None else DISCUSSION_OPENING)
    line = r.get("live", "neighbour_line", "str", NEIGHBOUR_LINE)
    clean = r.get("live", "clean", "bool", DEFAULT["clean"])
    # Without an anchor there is no {anchor} to show, and without a rule no {rule}.
    known = ("topic", *(("anchor",) if anchor is not None else ()), *(("rule",) if rule is not None else ()), *AGENT_FIELDS)
    try:
        check_template(prompt, required=("anchor", "neighbours") if anchor is not None else ("neighbours",), known=known)
        check_template(opening, required=(), known=known)
    except TemplateError as e:
        key = "live.prompt" if e.template == prompt else "live.opening_prompt"
        raise r.error(key, e.message) from None
    try:
        check_template(line, required=("text",), known=LINE_FIELDS)
    except TemplateError as e:
        raise r.error("live.neighbour_line", e.message) from None
    server = _server(r, models or (model,))
    return LiveSpec(
        **server,
        model=model,
        rounds=rounds,
        decodings=decodings,
        anchor_text=anchor_text,
        rule_spec=rule_spec,
        personas=personas,
        initial_texts=initial,
        prompt=prompt,
        opening_prompt=opening,
        seed=seed,
        neighbour_line=line,
        clean=clean,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        stop=tuple(stop),
        n_ctx=n_ctx,
        threads=threads,
        chat=chat,
        chat_models=chat_models,
        batch=batch,
        models=models,
        temperatures=temperatures,
        embedding_model=embedding_model,
        fit=fit,
        groups=groups,
        topic=topic,
        stances=stances,
        stance_prompt=stance_prompt,
        probe=probe,
        probe_form=probe_form,
        probe_statement=probe_statement,
        probe_every=probe_every,
        rule=rule,
    )


def _chat(r, models) -> tuple[str, tuple[tuple[str, str], ...] | None]:
    """``live.chat``: "auto" or "none" for every model, or a table by model as written (a mixed
    population whose models want different prompts; models left out get "auto")."""
    value = r.get("live", "chat", "any", "auto")
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
    backend = r.get("live", "backend", "str", "llama", check=lambda v: None if v in BACKENDS else f"must be one of {BACKENDS}")
    keys = ("endpoints", "api_key_env", "concurrency", "timeout", "retries", "server_extras")
    if backend != "openai":
        given = [k for k in keys if r.get("live", k, "any", None) is not None]
        if given:
            raise r.error(f"live.{given[0]}", 'applies to live.backend = "openai" only')
        return {}
    endpoints = r.get("live", "endpoints", "any", None)
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
    env = r.get("live", "api_key_env", "str", None, check=lambda v: None if v.strip() else "must name an environment variable")
    return {
        "backend": backend,
        "endpoints": tuple(u.rstrip("/") for u in endpoints),
        "api_key_env": env,
        "concurrency": r.get(
            "live",
            "concurrency",
            "int",
            DEFAULT["concurrency"],
            check=lambda v: None if 1 <= v <= 1024 else "must be from 1 to 1024",
        ),
        "timeout": r.get(
            "live", "timeout", "float", DEFAULT["timeout"], check=lambda v: None if v > 0 else "must be > 0 seconds"
        ),
        "retries": r.get(
            "live", "retries", "int", DEFAULT["retries"], check=lambda v: None if 0 <= v <= 20 else "must be from 0 to 20"
        ),
        "server_extras": r.get("live", "server_extras", "bool", DEFAULT["server_extras"]),
    }


def read_live(scenario: Scenario) -> Scenario:
    """``scenario`` with its ``[live]`` table read into a ``LiveSpec`` (unchanged if it has none or was read).

    Raises ``ScenarioError`` naming the file and the ``live.`` key, like the rest of the scenario.
    """
    if scenario.live is None or isinstance(scenario.live, LiveSpec):
        return scenario
    if not isinstance(scenario.live, dict):
        raise ScenarioError(scenario.source, "live", f"must be a table ([live]), got {scenario.live!r}"[:200])
    r = Reader(scenario.source or "<scenario>", {"live": scenario.live})
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
