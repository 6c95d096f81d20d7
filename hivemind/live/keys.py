"""Every key of a scenario's [live] section: type, default, allowed values, meaning, an example.

Defaults that the parser keeps in ``LiveSpec`` are read from it here, so they cannot drift; the
reference of scenario keys is generated from this table and ``hivemind.scenario.keys``.
"""

from __future__ import annotations

from hivemind.live.config import DECODINGS, DEFAULT, DEFAULT_MODEL, DEFAULT_ROUNDS
from hivemind.scenario.keys import Key


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
    ),
    Key("live.rounds", "integer", str(DEFAULT_ROUNDS), ">= 1", "rounds of conversation after round 0", "2"),
    Key(
        "live.decoding",
        "string or list",
        str(list(DECODINGS)).replace("'", '"'),
        ", ".join(DECODINGS),
        "the decodings to run, each a whole conversation",
        '"greedy"',
    ),
    Key(
        "live.seed",
        "integer",
        _d("seed"),
        "any",
        "each message's sampling seed is this key folded with (decoding, round, agent)",
        "3",
    ),
    Key("live.max_tokens", "integer", _d("max_tokens"), ">= 1", "the longest message, in tokens", "16"),
    Key(
        "live.temperature", "number or list", _d("temperature"), ">= 0, one per agent", "stochastic decoding's temperature", "0.5"
    ),
    Key("live.top_p", "number", _d("top_p"), "(0, 1]", "nucleus sampling's mass", "0.9"),
    Key("live.top_k", "integer", _d("top_k"), ">= 0", "sampling among the k likeliest tokens (0: all)", "20"),
    Key("live.stop", "string or list", _d("stop"), "strings", "where a message ends", '["\\n", "."]'),
    Key("live.n_ctx", "integer", _d("n_ctx"), ">= 64", "llama.cpp's context length in tokens", "1024"),
    Key("live.threads", "integer", _d("threads"), ">= 1", "llama.cpp's CPU threads", "1"),
    Key(
        "live.batch",
        "boolean or integer",
        _d("batch"),
        "true, false, K >= 1",
        "a round's agents decoded together in one batch, one after another, or K per batch",
        "4",
    ),
    Key(
        "live.chat",
        "string or table",
        _d("chat"),
        '"auto", "none", or { model = "auto"|"none" }',
        "wrap prompts in the model's chat template when it has one",
        '"none"',
    ),
    Key(
        "live.anchor_text", "string", "required with an anchor", "any", "what the anchor says, every round", '"Follow the river."'
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
    ),
    Key(
        "live.personas",
        "list or table",
        "-",
        "one string per peripheral agent",
        "who each agent is, written into its prompt",
        '["a cautious guide", "a bold scout", "a tired cook", "a calm judge", "a loud sailor", "a quiet poet", "a young pilot", '
        '"an old farmer"]',
    ),
    Key(
        "live.initial_texts",
        "list or table",
        "-",
        "one string per peripheral agent",
        "each agent's round-0 message (not generated)",
        '["a", "b", "c", "d", "e", "f", "g", "h"]',
    ),
    Key(
        "live.groups",
        "list or table",
        "- (the agents' models)",
        "one name per peripheral agent",
        "who is measured and fitted together (who pulls whom)",
        '["x", "x", "x", "x", "y", "y", "y", "y"]',
    ),
    Key(
        "live.stances",
        "list or table",
        "-",
        "integers -2..2, one per peripheral agent",
        "an assigned stance on the statement, written into each persona",
        "[-2, -1, 0, 1, 2, 2, 1, 0]",
    ),
    Key(
        "live.stance_prompt",
        "string",
        _d("stance_prompt"),
        "a template with {stance}",
        "how a stance is written into a persona",
        '"{agent} {stance} this: {statement}"',
    ),
    Key(
        "live.probe",
        "boolean",
        _d("probe"),
        "true, false",
        "ask every agent after every message how much it agrees (-2..2)",
        "true",
    ),
    Key(
        "live.probe_form",
        "string",
        _d("probe_form"),
        '"auto", "own", "judge", "own_yes_no", "judge_yes_no"',
        "how the probe asks; auto: the best form on the check set, per model",
        '"judge"',
    ),
    Key(
        "live.probe_statement",
        "string",
        "- (live.anchor_text)",
        "any",
        "what the probe and the stances are about",
        '"Rivers lead home."',
    ),
    Key(
        "live.probe_every",
        "integer",
        _d("probe_every"),
        ">= 1, with live.probe = true",
        "probe rounds 0, k, 2k, ... and the last only (the others' probe columns are empty)",
        "2",
        ("live.probe=true",),
    ),
    Key(
        "live.prompt",
        "string",
        "- (the default template)",
        "a template with {anchor} and {neighbours} (with an anchor)",
        "each round's prompt",
        '"{anchor} {rule} {neighbours} {agent}:"',
    ),
    Key(
        "live.opening_prompt",
        "string",
        "- (the default template)",
        "a template",
        "the round-0 prompt of an agent without an initial text",
        '"{agent}, say where to go."',
    ),
    Key(
        "live.neighbour_line",
        "string",
        _d("neighbour_line"),
        "a template with {text}",
        "how each neighbour's message is written",
        '"- {text}\\n"',
    ),
    Key(
        "live.clean",
        "boolean",
        _d("clean"),
        "true, false",
        "strip prompt scaffolding from messages (it is counted either way)",
        "false",
    ),
    Key(
        "live.embedding_model",
        "string",
        _d("embedding_model"),
        '"minilm", "self", "gemma3", "smollm2", a GGUF or ONNX file, "server"',
        "what embeds every text",
        '"minilm"',
    ),
    Key(
        "live.fit",
        "boolean",
        _d("fit"),
        "true, false",
        "fit the models of hivemind fit to each decoding's embeddings afterwards (one conversation, held out by rounds)",
        "false",
    ),
    Key(
        "live.backend",
        "string",
        _d("backend"),
        '"llama", "openai"',
        "llama.cpp in this process, or OpenAI-compatible servers",
        '"openai"',
        ('live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
    Key(
        "live.endpoints",
        "list of strings",
        "[]",
        "base URLs ending in /v1",
        "the servers, requests spread over them",
        '["http://127.0.0.1:9/v1"]',
        ('live.backend="openai"', 'live.model="served-model"'),
    ),
    Key(
        "live.api_key_env",
        "string",
        "-",
        "an environment variable's name",
        "where the API key is (the key is never written)",
        '"HIVEMIND_TEST_KEY"',
        ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
    Key(
        "live.concurrency",
        "integer",
        _d("concurrency"),
        ">= 1",
        "requests in flight per endpoint",
        "8",
        ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
    Key(
        "live.timeout",
        "number",
        _d("timeout"),
        "> 0",
        "seconds per request before it counts as failed",
        "30.0",
        ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
    Key(
        "live.retries",
        "integer",
        _d("retries"),
        ">= 0",
        "further tries of a failed request, with back-off",
        "1",
        ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
    Key(
        "live.server_extras",
        "boolean",
        _d("server_extras"),
        "true, false",
        "send top_k, min_p and repeat_penalty besides OpenAI's fields",
        "false",
        ('live.backend="openai"', 'live.endpoints=["http://127.0.0.1:9/v1"]', 'live.model="served-model"'),
    ),
)
