"""Fuzzed scenario and graph files: each one runs, or fails with one line and exit status 2.

Hypothesis mutates a valid scenario (wrong types, missing keys, huge, negative, NaN and
infinite numbers, unicode, deep nesting, wrong shapes, unknown keys, odd graphs) and
feeds it to the CLI. A traceback, an exit status other than 0, 1 or 2, or an error that
is not one line naming the file fails the test. The number of inputs tried is printed.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivemind.cli import main

BASE = {
    "name": "fuzz",
    "manifold": {"kind": "sphere", "dim": 2},
    "graph": {"kind": "cycle", "n": 6},
    "anchor": {"node": 0, "state": "random", "coupling": 1.0},
    "init": {"kind": "cap", "spread": 1.0},
    "dynamics": {"rule": "gradient", "step_size": 0.1, "steps": 20, "noise": 0.0},
    "record": {"every": 5},
    "run": {"seeds": [0, 1]},
    "agents": {"inertia": 1.0},
}

ODD = [
    "x",
    "",
    "ñ∞🙂\u202e",
    True,
    0,
    -1,
    -0.5,
    10**18,
    2**63 - 1,
    1e308,
    -1e308,
    math.nan,
    math.inf,
    -math.inf,
    [],
    [1, 2, 3],
    [[1.0, 0.0], [0.0]],
    [[[[[[1]]]]]],
    {},
    {"a": {"b": {"c": 1}}},
    "gradient",
    "sphere",
    "edges",
    "file",
]

GRAPHS = [
    {"kind": "edges", "n": 4, "edges": [[0, 0], [0, 1], [1, 2]]},  # self-loop
    {"kind": "edges", "n": 5, "edges": [[0, 1], [1, 2]]},  # isolated nodes
    {"kind": "edges", "n": 3, "edges": [[0, 1], [0, 1], [1, 0], [1, 2]]},  # duplicates
    {"kind": "edges", "n": 4, "edges": [[1, 2], [2, 3]]},  # the anchor has no edges
    {"kind": "edges", "n": 3, "edges": [[0, 1, -2.0], [1, 2, "w"]]},  # bad weights
    {"kind": "edges", "n": 3, "edges": [[0, 7]]},  # no such node
    {"kind": "edges", "n": 3, "edges": "0 1"},
    {"kind": "complete", "n": 0},
    {"kind": "path", "n": 1},
    {"kind": "barabasi_albert", "n": 10, "params": {"m": 20}},
    {"kind": "random_regular", "n": 7, "params": {"d": 3}},  # n * d odd: networkx refuses
    {"kind": "file", "path": "does-not-exist.graphml"},
    {"kind": "write_graphml", "n": 3},
]


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def render(doc: dict) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(k)}]")
            lines += [f"{json.dumps(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


KEYS = [(s, k) for s, t in BASE.items() if isinstance(t, dict) for k in t] + [(None, "name")]


@st.composite
def mutated(draw):
    doc = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "delete", "add", "graph", "drop_section", "text"]))
        section, key = draw(st.sampled_from(KEYS))
        table = doc if section is None else doc.setdefault(section, {})
        if not isinstance(table, dict):
            continue
        if op == "replace":
            table[key] = draw(st.sampled_from(ODD) | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5))
        elif op == "delete":
            table.pop(key, None)
        elif op == "add":
            table[draw(st.sampled_from(["extra", "ñ", "steps", "kind", "seed"]))] = draw(st.sampled_from(ODD))
        elif op == "graph":
            doc["graph"] = dict(draw(st.sampled_from(GRAPHS)))
        elif op == "drop_section" and section is not None:
            doc.pop(section, None)
        else:
            doc[draw(st.sampled_from(["extra", "manifold", "run"]))] = draw(st.sampled_from(ODD))
    text = render(doc)
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:  # truncated or garbled files too
        text = text[: draw(st.integers(0, len(text)))] + draw(st.sampled_from(["", "[", "= =", "\x00", '"unterminated']))
    return text


def small_enough_to_run(path) -> bool:
    from hivemind.scenario import load_scenario

    s = load_scenario(path)
    return s.arrays.n_nodes <= 200 and s.dynamics.steps <= 500 and s.manifold.dim <= 16 and len(s.run.seeds) <= 4


def check_one(path, out, capsys) -> str:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    if code == 2:
        assert captured.err.count("\n") == 1, captured.err
        assert captured.err.startswith(str(path)) and "Traceback" not in captured.err, captured.err
        return "refused"
    assert code == 0, (code, captured)
    if not small_enough_to_run(path):
        return "valid"
    code = main(["run", str(path), "--out", str(out), "--quiet", "--force"])
    captured = capsys.readouterr()
    assert code in (0, 1), (code, captured)
    if code == 1:
        assert "numerical blow-up" in captured.err
    return "ran" if code == 0 else "diverged"


def fuzz(strategy, examples: int, tmp_path, capsys, label: str) -> dict[str, int]:
    """Feed ``examples`` files drawn from ``strategy`` through ``check_one``; print and return the tally."""
    tally = {}

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(text=strategy)
    def one(text):
        path = tmp_path / "fuzz.toml"
        path.write_text(text, encoding="utf-8")
        outcome = check_one(path, tmp_path / "out", capsys)
        tally[outcome] = tally.get(outcome, 0) + 1

    one()
    with capsys.disabled():
        print(f"\n{label}: {sum(tally.values())} tried: {tally}")
    return tally


def test_fuzzed_scenarios_run_or_fail_in_one_line(tmp_path, capsys):
    tally = fuzz(mutated(), 160, tmp_path, capsys, "fuzzed scenario files")
    assert tally.get("refused", 0) > 50 and tally.get("ran", 0) > 10  # both sides were exercised


GRAPH_FILES = {
    "truncated.graphml": (
        '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<graph edgedefault="undirected"><node id="a"/><node id="b"/><edge source="a" targ'
    ),
    "words.edges": "0 1 heavy\n1 2 1.0\n",
    "nan.edges": "0 1 nan\n1 2 1\n",
    "negative.edges": "0 1 -3\n",
    "short.edges": "0\n1 2\n",
    "binary.edges": "\x00\x01\x02\xff",
    "empty.edges": "",
    "unicode.edges": "ñ 🙂\n🙂 ∞\n",
}


def test_bad_graph_files_fail_in_one_line(tmp_path, capsys):
    tried = 0
    for name, content in GRAPH_FILES.items():
        graph_file = tmp_path / name
        graph_file.write_bytes(content.encode("utf-8", "surrogateescape") if name != "binary.edges" else b"\x00\x01\x02\xff")
        path = tmp_path / "g.toml"
        path.write_text(render({**BASE, "graph": {"kind": "file", "path": name}, "anchor": {"node": 0}}))
        code = main(["validate", str(path)])
        captured = capsys.readouterr()
        tried += 1
        if name == "unicode.edges":  # odd labels are still labels; the anchor 0 is not one of them
            assert code == 2 and "anchor.node" in captured.err
            continue
        assert code == 2, (name, captured)
        assert captured.err.count("\n") == 1 and "graph" in captured.err, (name, captured.err)
    with capsys.disabled():
        print(f"\nbad graph files: {tried} tried")


OPTAX_NAMES = sorted(n for n in dir(__import__("optax")) if not n.startswith("_"))
OPTION_VALUES = ["x", "", True, False, 0, 1, -1, 2**63 - 1, 0.9, -0.5, 1e308, math.nan, math.inf, [], [0.9], {}, {"a": 1}]
OPTION_KEYS = ["momentum", "nesterov", "b1", "b2", "eps", "decay", "weight_decay", "learning_rate", "centered", "extra"]


@st.composite
def optax_rules(draw):
    """A rule drawn from every public name in optax, with options of every type."""
    doc = json.loads(json.dumps(BASE))
    doc["dynamics"]["rule"] = draw(st.sampled_from(OPTAX_NAMES + ["sgd", "adam", "rmsprop"]))
    doc["dynamics"]["steps"] = 4
    doc["record"]["every"] = 2
    if draw(st.booleans()):
        doc["dynamics"]["options"] = draw(
            st.dictionaries(st.sampled_from(OPTION_KEYS), st.sampled_from(OPTION_VALUES), min_size=1, max_size=2)
        )
    return render(doc)


@pytest.mark.slow
def test_fuzzed_optax_rules_and_options_run_or_fail_in_one_line(tmp_path, capsys):
    """Every name in optax as a rule (optimizers, transformations, functions, classes), options of every type."""
    tally = fuzz(optax_rules(), 100, tmp_path, capsys, "fuzzed optax rules and options")
    # Most draws are names that are not optimizers; every name is run once in the test below.
    assert tally.get("refused", 0) > 50 and tally.get("ran", 0) > 5


MUST_RUN = {"adam", "sgd", "rmsprop", "adamw", "lion"}
MUST_REFUSE = {"apply_updates", "GradientTransformation", "scale", "clip", "chain", "identity"}


# One case per name, not one loop: the names spread over the test workers (the loop was one
# 70 s test at the end of the suite).
@pytest.mark.slow
@pytest.mark.parametrize("name", OPTAX_NAMES)
def test_every_optax_name_is_an_optimizer_that_runs_or_refused_in_one_line(name, tmp_path, capsys):
    """Not a sample: each public optax name once, through validation; the accepted ones must run."""
    doc = json.loads(json.dumps(BASE))
    doc["dynamics"].update(rule=name, steps=3)
    path = tmp_path / "rule.toml"
    path.write_text(render(doc))
    outcome = check_one(path, tmp_path / "out", capsys)
    assert outcome in ("refused", "ran"), (name, outcome)
    if name in MUST_RUN:
        assert outcome == "ran"
    if name in MUST_REFUSE:
        assert outcome == "refused"


def test_the_names_that_must_run_or_be_refused_are_optax_names():
    assert MUST_RUN | MUST_REFUSE <= set(OPTAX_NAMES)


LIVE = {
    "model": "default",
    "rounds": 2,
    "max_tokens": 8,
    "decoding": ["greedy", "stochastic"],
    "temperature": 0.8,
    "seed": 0,
    "n_ctx": 512,
    "threads": 1,
    "anchor_text": "Follow the river.",
    "rule": [{"kind": "phrase", "text": "the river"}],
    "initial_texts": ["a", "b", "c", "d", "e"],
    "chat": "auto",
}
LIVE_ODD = ODD + [
    [{"kind": "regex", "pattern": "("}],
    [{"kind": "nope"}],
    "{unknown}",
    "{anchor.__class__}",
    "{anchor",
    ["\n", 3],
]


@st.composite
def live_sections(draw):
    doc = json.loads(json.dumps(BASE))
    doc["live"] = json.loads(json.dumps(LIVE))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*LIVE, "prompt", "opening_prompt", "personas", "stop", "top_p", "top_k", "extra"]))
        op = draw(st.sampled_from(["replace", "replace", "delete"]))
        if op == "delete":
            doc["live"].pop(key, None)
        else:
            doc["live"][key] = draw(st.sampled_from(LIVE_ODD) | st.integers(-(2**40), 2**40) | st.text(max_size=6))
    return render(doc)


@pytest.mark.slow
def test_fuzzed_live_sections_validate_or_fail_in_one_line(tmp_path, capsys):
    """The [live] section's keys, mutated; validation only (no model is loaded)."""
    tally = {}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(text=live_sections())
    def one(text):
        path = tmp_path / "live.toml"
        path.write_text(text, encoding="utf-8")
        code = main(["validate", str(path)])
        captured = capsys.readouterr()
        if code == 2:
            assert captured.err.count("\n") == 1 and captured.err.startswith(str(path)), captured.err
            assert "Traceback" not in captured.err
        else:
            assert code == 0, (code, captured)
        tally["refused" if code == 2 else "valid"] = tally.get("refused" if code == 2 else "valid", 0) + 1

    one()
    with capsys.disabled():
        print(f"\nfuzzed [live] sections: {sum(tally.values())} tried: {tally}")
    assert tally.get("refused", 0) > 50 and tally.get("valid", 0) > 5


def test_a_float_option_the_optimizer_branches_on_is_refused_before_the_run(tmp_path, capsys):
    """Found by the fuzzer: optax.nadam(nesterov=0.9) builds eagerly, but the engine traces float
    options, and `if nesterov:` on a tracer fails mid-run. Validation traces them the same way."""
    doc = json.loads(json.dumps(BASE))
    doc["dynamics"].update(rule="nadam", options={"nesterov": 0.9})
    path = tmp_path / "nadam.toml"
    path.write_text(render(doc))
    assert check_one(path, tmp_path / "out", capsys) == "refused"
    doc["dynamics"]["options"] = {"nesterov": True}
    path.write_text(render(doc))
    assert check_one(path, tmp_path / "out", capsys) == "ran"
