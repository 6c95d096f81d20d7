"""The ``[live]`` section of a scenario: which model, how many rounds, how to decode, what the anchor says.

The graph, the anchor node and the agents come from the scenario's usual sections;
``[live]`` adds the text side. ``parse_live`` reads it through the scenario reader, so
every problem is a ``ScenarioError`` naming the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from hivemind.live.compliance import Rule, RuleError, parse_rule
from hivemind.live.prompts import DEFAULT_OPENING, DEFAULT_PROMPT, TemplateError, check_template

DECODINGS = ("greedy", "stochastic")
DEFAULT_MODEL = "default"


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
    anchor_text: str
    rule_spec: Any  # the rule as written (plain data, for the fingerprint)
    personas: tuple[str, ...] | None
    initial_texts: tuple[str, ...] | None
    prompt: str
    opening_prompt: str
    seed: int = 0
    max_tokens: int = 48
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    stop: tuple[str, ...] = ("\n",)
    n_ctx: int = 2048
    threads: int = 2
    chat: str = "auto"
    rule: Rule = field(default=None, compare=False, repr=False)

    def sampling(self, decoding: str) -> Sampling:
        return Sampling(decoding, self.temperature, self.top_p, self.top_k, self.max_tokens, self.stop)

    def to_dict(self) -> dict:
        """Plain data for the fingerprint and the manifest: the rule as written, tuples as lists."""
        out = {}
        for f in fields(self):
            if f.name == "rule":
                continue
            value = getattr(self, f.name)
            out["rule" if f.name == "rule_spec" else f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _per_agent(r, key: str, labels: list, anchor: int) -> tuple[str, ...] | None:
    """A list with one string per peripheral agent, or a table keyed by node label."""
    value = r.get("live", key, "any", None)
    if value is None:
        return None
    path = f"live.{key}"
    peripheral = [label for i, label in enumerate(labels) if i != anchor]
    if isinstance(value, list):
        if len(value) != len(peripheral):
            raise r.error(path, f"must have one text per peripheral agent ({len(peripheral)}), got {len(value)}")
        texts = value
    elif isinstance(value, dict):
        by_name = {str(label): label for label in peripheral}
        unknown = [k for k in value if k not in by_name]
        if unknown:
            raise r.error(f"{path}.{unknown[0]}", "is not a peripheral agent of the graph")
        missing = [str(label) for label in peripheral if str(label) not in value]
        if missing:
            raise r.error(path, f"has no text for agent {missing[0]} (give one per peripheral agent)")
        texts = [value[str(label)] for label in peripheral]
    else:
        raise r.error(path, f"must be a list of strings (one per peripheral agent) or a table keyed by node, got {value!r}"[:200])
    for k, t in enumerate(texts):
        if not isinstance(t, str):
            raise r.error(path, f"entry {k} must be a string, got {t!r}")
    return tuple(texts)


def parse_live(r, labels: list, anchor: int) -> LiveSpec:
    """Read ``[live]`` with the scenario's reader ``r`` (a ``scenario._Reader``)."""

    def positive_int(v):
        return None if v >= 1 else "must be >= 1"

    model = r.get("live", "model", "str", DEFAULT_MODEL)
    if not model.strip():
        raise r.error("live.model", "must be a path to a GGUF file or 'default'")
    rounds = r.get("live", "rounds", "int", 4, check=positive_int)
    decoding = r.get("live", "decoding", "any", "greedy")
    decodings = tuple(decoding) if isinstance(decoding, list) else (decoding,)
    if not decodings or any(d not in DECODINGS for d in decodings) or len(set(decodings)) != len(decodings):
        raise r.error("live.decoding", f"must be 'greedy', 'stochastic' or a list of both, got {decoding!r}")
    seed = r.get("live", "seed", "int", 0, check=lambda v: None if v >= 0 else "must be >= 0")
    max_tokens = r.get("live", "max_tokens", "int", 48, check=positive_int)
    temperature = r.get("live", "temperature", "float", 0.8, check=lambda v: None if v > 0 else "must be > 0")
    top_p = r.get("live", "top_p", "float", 0.95, check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")
    top_k = r.get("live", "top_k", "int", 40, check=lambda v: None if v >= 0 else "must be >= 0 (0: no limit)")
    stop = r.get("live", "stop", "any", ["\n"])
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or any(not isinstance(s, str) or not s for s in stop):
        raise r.error("live.stop", f"must be a list of non-empty strings, got {stop!r}")
    n_ctx = r.get("live", "n_ctx", "int", 2048, check=lambda v: None if v >= 64 else "must be >= 64")
    threads = r.get("live", "threads", "int", min(os.cpu_count() or 1, 8), check=positive_int)
    chat = r.get("live", "chat", "str", "auto", check=lambda v: None if v in ("auto", "none") else "must be 'auto' or 'none'")
    anchor_text = r.get("live", "anchor_text", "str")
    if not anchor_text.strip():
        raise r.error("live.anchor_text", "must not be empty")
    rule_spec = r.get("live", "rule", "any")
    try:
        rule = parse_rule(rule_spec, "live.rule")
    except RuleError as e:
        raise r.error(e.key, e.message) from None
    personas = _per_agent(r, "personas", labels, anchor)
    initial = _per_agent(r, "initial_texts", labels, anchor)
    if initial is not None:
        for k, t in enumerate(initial):
            if not t.strip():
                raise r.error("live.initial_texts", f"entry {k} is empty; every agent needs a first message")
    if personas is None and initial is None:
        raise r.error("live", "needs personas or initial_texts (one per peripheral agent) to start the conversation")
    prompt = r.get("live", "prompt", "str", DEFAULT_PROMPT)
    opening = r.get("live", "opening_prompt", "str", DEFAULT_OPENING)
    try:
        check_template(prompt, required=("anchor", "neighbours"))
        check_template(opening, required=())
    except TemplateError as e:
        key = "live.prompt" if e.template == prompt else "live.opening_prompt"
        raise r.error(key, e.message) from None
    return LiveSpec(
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
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        stop=tuple(stop),
        n_ctx=n_ctx,
        threads=threads,
        chat=chat,
        rule=rule,
    )
