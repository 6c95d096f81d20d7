"""Opinion probes with the real default model (Gemma 3 270M): where the batch's probe reads, what
the check set says of it (whatever that is), and a small run of pairs without an anchor."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from hivemind.cli import main  # noqa: E402
from hivemind.live.backends import LlamaBackend  # noqa: E402
from hivemind.live.backends.batched import BatchDecoder  # noqa: E402
from hivemind.live.config import Sampling  # noqa: E402
from hivemind.live.model import default_model  # noqa: E402
from hivemind.live.probe import FORMS, check_set_probe  # noqa: E402

pytestmark = pytest.mark.slow


def softmax_at(logits: np.ndarray, tokens: list[int]) -> np.ndarray:
    z = np.exp(logits.astype(np.float64) - logits.max())
    return z[tokens] / z.sum()


def test_the_batchs_probe_reads_where_each_message_ended():
    """Each sequence is asked the question after its own message, in the batch's cache: the same
    probabilities as one prompt evaluated alone (prefix, suffix, the greedy message, the question)."""
    llm = llama_cpp.Llama(model_path=str(default_model(lambda s: None)), n_ctx=512, n_threads=2, verbose=False)
    prefix = llm.tokenize(b"A discussion group about the way home.\n", add_bos=True)
    suffixes = [llm.tokenize(t.encode(), add_bos=False) for t in ("Anna: I think", "Ben: The river", "Cleo: We must")]
    question = llm.tokenize(b"\n\nDo you agree that the river is the way home? Answer Yes or No.\nAnswer:", add_bos=False)
    wanted = [llm.tokenize(b" Yes", add_bos=False)[0], llm.tokenize(b" No", add_bos=False)[0]]
    decoder = BatchDecoder(llm, n_ctx=1024, n_seq=3, threads=2)
    # No stop string: every message runs to max_tokens, so its last token is still to be evaluated.
    three = Sampling(decoding="greedy", max_tokens=3, stop=())
    gens, _ = decoder.generate(prefix, suffixes, [three] * 3, [0, 1, 2], [question] * 3, wanted)
    decoder.close()

    def last():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()

    readings = []
    for k, suffix in enumerate(suffixes):
        # The batch's message as tokens (its text lost only the leading space); three, as decoded.
        tokens = llm.tokenize((" " + gens[k].text).encode(), add_bos=False)
        assert len(tokens) == 3 and gens[k].finish_reason == "length"
        llm.reset()
        llm.eval(prefix + suffix + tokens + question)
        alone = softmax_at(last(), wanted)
        readings.append(alone)
        np.testing.assert_allclose(gens[k].probe, alone, atol=0.03)
    # Asked without the message in between, the answer is another (the check above could fail).
    llm.reset()
    llm.eval(prefix + suffixes[0] + question)
    assert np.max(np.abs(softmax_at(last(), wanted) - readings[0])) > 0.03
    llm.close()


def test_the_check_set_separation_of_the_default_model_is_measured_and_reported():
    """Whatever it is: computed from prompts read one at a time, so the same with any batch size."""
    small = LlamaBackend(default_model(lambda s: None), 512, 2, batch=1)
    one = check_set_probe(small, FORMS["own_yes_no"], "gemma3")
    small.close()
    wide = LlamaBackend(default_model(lambda s: None), 512, 2, batch=8)
    other = check_set_probe(wide, FORMS["own_yes_no"], "gemma3")
    wide.close()
    for key in ("paraphrase", "negation", "alternative"):
        np.testing.assert_allclose(one.values[key], other.values[key], atol=1e-6)
    assert 0.0 <= one.negation_auc <= 1.0 and 0.0 < one.overall_mass < 1.0
    paraphrase, negation = np.asarray(one.values["paraphrase"]), np.asarray(one.values["negation"])
    by_hand = np.mean((paraphrase[:, None] > negation[None, :]) + 0.5 * (paraphrase[:, None] == negation[None, :]))
    assert one.negation_auc == pytest.approx(by_hand)
    # The batch's own noise was measured (batch 8 reads the sentences together, differently summed).
    assert other.noise > 0 and one.noise == 0.0
    assert one.reliable == (one.negation_auc >= 0.7 and abs(one.signal) > 2 * one.noise)


def test_two_real_pairs_without_an_anchor_are_probed_every_round(tmp_path, capsys):
    text = """
name = "real_pairs"
[graph]
kind = "groups"
size = 2
count = 2
[live]
rounds = 1
max_tokens = 16
n_ctx = 512
topic = "climate change"
probe_statement = "Climate change is caused by humans."
stances = [-2, 2, 1, -1]
probe = true
probe_form = "own_yes_no"
fit = false
"""
    path = tmp_path / "pairs.toml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["live", str(path), "--out", str(out), "--formats", "png"]) == 0
    printed, progress = capsys.readouterr()
    assert "real_pairs: 4 agents discussing 'climate change' without an anchor, 1 round, greedy decoding" in progress
    assert printed.startswith("verdict: 2 discussion(s) of 'climate change', no anchor, 1 rounds")
    assert "2 discussion(s) of 'climate change', no anchor:" in (out / "report.txt").read_text()
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "agents.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2 and {r["conversation"] for r in rows} == {"0", "1"}
    for r in rows:
        assert -2.0 <= float(r["probe"]) <= 2.0 and 0.0 < float(r["probe_mass"]) <= 1.0
        assert 0.0 <= float(r["probe_entropy"]) <= np.log(2) + 1e-9
    probes = summary["probes"]["default"]
    assert probes["form"] == "own_yes_no" and "negation_auc" in probes["check_set"]
    assert (out / "discussions_greedy.csv").is_file()


def test_a_kv_cache_larger_than_the_machine_is_refused_before_llama_cpp_makes_it(capfd):
    """The KV estimate against the sizes llama.cpp itself reports when it makes the cache (its
    log, both of Gemma 3's caches); a batch past the machine's memory is one line naming
    live.batch, and no decoder was made."""
    import re

    from hivemind.live.model import ModelError
    from hivemind.scenario.graphs import machine_memory

    path = default_model(lambda s: None)
    capfd.readouterr()
    llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=2, verbose=True).close()
    reported = [float(x) for x in re.findall(r"llama_kv_cache: size = +([0-9.]+) MiB", capfd.readouterr().err)]
    assert reported, "llama.cpp did not report its KV cache"
    backend = LlamaBackend(path, 1024, 2, batch=1)
    assert backend.kv_bytes(1) == pytest.approx(sum(reported) * 2**20, rel=1e-3)
    assert backend.kv_bytes(5) == 5 * backend.kv_bytes(1)
    if machine_memory() is None:
        pytest.skip("the system does not say how much memory it has")
    too_many = machine_memory() // backend.kv_bytes(1) + 1
    with pytest.raises(ModelError, match=r"^live.batch: .* agents x live.n_ctx 1024 tokens make a KV cache of about"):
        backend.check_memory(too_many)
    assert backend._decoder is None
    backend.close()
