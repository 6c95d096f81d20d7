"""Prompt scaffolding in messages: found, cut, counted; and embedders that cannot embed, refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hivemind.live.backends import FakeBackend
from hivemind.live.cleaner import Scaffold
from hivemind.live.prompts import DEFAULT_OPENING, DEFAULT_PROMPT, NEIGHBOUR_LINE, TRANSCRIPT_PROMPT
from hivemind.live.run import run_live
from tests.live.test_live import SCENARIO, messages, read_csv, run_cli, scenario

NAMES = [str(i) for i in range(33)]
OLD = Scaffold.of((TRANSCRIPT_PROMPT, "{persona}\n{agent} states an opinion in one sentence.\n{agent}:", NEIGHBOUR_LINE), NAMES)
NEW = Scaffold.of((DEFAULT_PROMPT, DEFAULT_OPENING, NEIGHBOUR_LINE), NAMES)


@pytest.mark.parametrize(
    "raw, kept",
    [
        # The echoes seen in analysis/live32.toml's stochastic run with the transcript prompt.
        ("(last round): My guess is that it is flat.", "My guess is that it is flat."),
        ("(last round): (last round): (last round): ", ""),
        ("12 (last round): follow the river", "follow the river"),
        ("Leader: The river is the only road home.", "The river is the only road home."),
        ("We should follow the river. 5: No, we should not.", "We should follow the river."),
        ("A discussion group. The leader's message never changes, and every member's message must include it", ""),
    ],
)
def test_scaffolding_is_stripped_and_recorded(raw, kept):
    c = OLD.clean(raw)
    assert c.text == kept and c.malformed and c.raw == raw and OLD.find(raw)
    # What was removed and what was kept make up the message, nothing more (bar spaces).
    assert sorted("".join((*c.removed, c.text)).replace(" ", "")) == sorted(raw.replace(" ", ""))


@pytest.mark.parametrize(
    "text",
    [
        "The river at 3:00 is calm.",
        "Honestly: the river is the best road.",
        "He said to me: follow the river.",
        "I think we should cross the mountains to the east.",
        "Let's build a new city, with more people, and a stronger economic system.",
    ],
)
def test_prose_is_left_alone(text):
    for scaffold in (OLD, NEW):
        c = scaffold.clean(text)
        assert c.text == text and not c.malformed and not scaffold.find(text)


def test_quotes_around_a_message_are_form_not_scaffolding():
    c = NEW.clean('"Follow the river home."')
    assert c.text == "Follow the river home." and not c.malformed


def test_the_scaffolding_of_a_template_is_its_own():
    """The transcript prompt's "(last round):" is scaffolding for it; the default prompt has no
    such label, but a speaker's name opening a message is scaffolding for both."""
    assert "(last round):" in OLD.fragments and not any("last round" in f for f in NEW.fragments)
    assert NEW.clean("7: We go east.").text == "We go east."


def test_malformed_outputs_are_counted_per_round_and_kept_raw(tmp_path):
    """A fake model that echoes the prompt's label in every other message."""
    calls = iter(range(10_000))

    def respond(prompt, seed):
        k = next(calls)
        return f"2: the river {k}" if k % 2 == 0 else f"the river {k}"

    run_live(scenario(overrides=['live.decoding="greedy"']), tmp_path, backend=FakeBackend(respond=respond), say=lambda s: None)
    _, recs = messages(tmp_path / "transcript.jsonl")
    generated = [r for r in recs if r["generated"]]
    bad = [r for r in generated if r["malformed"]]
    assert len(bad) == sum(int(r["text"].split()[-1]) % 2 == 0 for r in generated) > 0
    assert all(r["raw_text"] == "2: " + r["text"] and r["removed"] == ["2:"] for r in bad)
    rows = read_csv(tmp_path / "rounds.csv")
    for row in rows:
        expected = sum(r["malformed"] for r in generated if r["round"] == int(row["round"]))
        assert int(row["malformed_outputs"]) == expected
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["table"][0]["malformed_outputs"] == len(bad)
    # live.clean = false keeps the messages as written, and still counts them.
    calls = iter(range(10_000))
    over = ['live.decoding="greedy"', "live.clean=false"]
    run_live(scenario(overrides=over), tmp_path / "raw", backend=FakeBackend(respond=respond), say=lambda s: None)
    _, raw = messages(tmp_path / "raw" / "transcript.jsonl")
    kept = [r for r in raw if r["generated"] and r["malformed"]]
    assert len(kept) == len(bad) and all(r["text"] == r["raw_text"] and r["text"].startswith("2: ") for r in kept)
    assert scenario(overrides=over).fingerprint != scenario(overrides=['live.decoding="greedy"']).fingerprint


def test_the_embedder_check_is_said_and_saved(tmp_path):
    """The check-set line before the first round, and its numbers in summary.json and live.nc."""
    from hivemind.live import geometry

    said = []
    res = run_live(scenario(overrides=["live.rounds=1"]), tmp_path, backend=FakeBackend(), say=said.append)
    line = next(s for s in said if s.startswith("embedder fake"))
    expected = geometry.separation(FakeBackend().embed)
    assert f"in {expected.agreement_auc:.0%} of pairs" in line
    saved = res.summary["embedder"]
    assert saved["name"] == "fake" and saved["check_set"]["agreement_auc"] == pytest.approx(expected.agreement_auc)
    assert res.dataset.attrs["embedder"] == "fake"
    # Said before any round is written.
    assert said.index(line) < next(k for k, s in enumerate(said) if "round 0" in s)


# ---------------------------------------------------------------------------
# Embedders that cannot embed: one line naming live.embedding_model, exit status 2


@pytest.fixture
def live_file(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text(SCENARIO)
    return path


def _cli_error(capsys, live_file, out, value):
    code, _, err = run_cli(capsys, "live", live_file, "--out", out, "--set", f'live.embedding_model="{value}"', "--quiet")
    return code, err


def test_a_missing_onnx_embedder(live_file, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("llama_cpp")
    code, err = _cli_error(capsys, live_file, tmp_path / "a", tmp_path / "none.onnx")
    assert code == 2 and err.startswith("live.embedding_model: no such file") and err.count("\n") == 1


def test_a_corrupt_onnx_embedder(live_file, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("llama_cpp")
    from hivemind.live.embedders import MINILM_TOKENIZER
    from hivemind.live.packaged import fetch

    bad = tmp_path / "model.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "tokenizer.json").write_bytes(fetch(MINILM_TOKENIZER, say=lambda s: None).read_bytes())
    code, err = _cli_error(capsys, live_file, tmp_path / "a", bad)
    assert code == 2 and err.startswith("live.embedding_model: onnxruntime cannot load") and err.count("\n") == 1
    (tmp_path / "tokenizer.json").unlink()
    code, err = _cli_error(capsys, live_file, tmp_path / "b", bad)
    assert code == 2 and "needs its tokenizer" in err and err.count("\n") == 1


def test_an_onnx_model_that_is_not_an_embedder(live_file, tmp_path, capsys):
    """A valid ONNX model that takes one float tensor and returns it: not a sentence embedder."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("llama_cpp")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from hivemind.live.embedders import MINILM_TOKENIZER
    from hivemind.live.packaged import fetch

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    (tmp_path / "tokenizer.json").write_bytes(fetch(MINILM_TOKENIZER, say=lambda s: None).read_bytes())
    code, err = _cli_error(capsys, live_file, tmp_path / "a", path)
    assert code == 2 and err.startswith("live.embedding_model: ") and "is not a sentence-embedding model" in err
    assert err.count("\n") == 1
