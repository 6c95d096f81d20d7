"""The OpenAI-compatible server backend: against a real llama-cpp-python server on the default GGUF
file (a run, a stalled server and the timeout, a killed server and the resume), and against a tiny
misbehaving server for what a real one will not do on demand (malformed JSON, 503s, overlap counts).
Nothing is mocked at the HTTP level on the main path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hivemind import ScenarioError, parse_scenario
from hivemind.cli import main
from hivemind.live.conversation import message_seeds
from tests.live.servers import LlamaServer, Stub, free_port, scenario_text


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def records(out):
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    return lines[0], lines[1:]


def live(capsys, *argv):
    code = main(["live", *argv, "--formats", "png", "--quiet"])
    return code, capsys.readouterr()


# ---------------------------------------------------------------------------
# The scenario keys


@pytest.mark.parametrize(
    "extra, key",
    [
        ('backend = "openai"', "live.endpoints"),
        ('backend = "openai"\nendpoints = ["ftp://x"]', "live.endpoints[0]"),
        ('backend = "openai"\nendpoints = ["http://127.0.0.1:1/v1"]\nconcurrency = 0', "live.concurrency"),
        ('endpoints = ["http://127.0.0.1:1/v1"]', "live.endpoints"),
        ('backend = "vllm"', "live.backend"),
    ],
)
def test_bad_server_keys_name_the_key(extra, key):
    text = f"""
[graph]
kind = "wheel_graph"
n = 3
[anchor]
node = 0
[live]
anchor_text = "a"
rule = [{{ kind = "phrase", text = "a" }}]
initial_texts = ["x", "y"]
model = "served"
{extra}
"""
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file="s.toml")
    assert f"s.toml: {key}" in str(e.value)


def test_the_default_model_must_be_named_for_a_server():
    with pytest.raises(ScenarioError, match=r"live\.model must name the model the servers serve"):
        parse_scenario(scenario_text(["http://127.0.0.1:1/v1"], model="default"), file="s.toml")


def test_endpoints_and_concurrency_are_execution_settings():
    one = parse_scenario(scenario_text(["http://127.0.0.1:1/v1"]), file="s.toml")
    two = parse_scenario(
        scenario_text(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], extra="concurrency = 9"), file="s.toml"
    )
    assert one.fingerprint == two.fingerprint  # 1 or N endpoints: the same run, resumable on either
    assert two.live.execution()["endpoints"] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]


# ---------------------------------------------------------------------------
# A tiny server: overlap, retries, faults


def test_a_rounds_requests_are_in_flight_together_and_spread_over_endpoints(tmp_path, capsys):
    with Stub(delay=0.5) as a, Stub(delay=0.5) as b:
        path = write(tmp_path, scenario_text([a.url, b.url], agents=8, extra='concurrency = 3\nembedding_model = "server"'))
        code, _ = live(capsys, path, "--out", str(tmp_path / "out"))
        assert code == 0
        # 8 requests a round, 4 to each endpoint, at most 3 at once there: both held 3 together.
        assert a.max_in_flight == 3 and b.max_in_flight == 3
        assert len(a.bodies) == len(b.bodies) == 8
    header, recs = records(tmp_path / "out")
    generated = [r for r in recs if r["generated"]]
    assert {r["endpoint"] for r in generated} == {a.url, b.url}
    assert {r["served_model"] for r in generated} == {"served-stub"}
    seeds = message_seeds(0, ("greedy",), 2, 9)
    sent = {(body["seed"]) for body in a.bodies + b.bodies}
    assert sent == {int(seeds[0, r["round"], r["index"]]) for r in generated}
    body = a.bodies[0]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 12 and body["stop"] == ["\n"] and body["top_k"] == 0
    # The server's own token counts; the characters that the prompt budget counted beside them.
    assert all(r["prompt_tokens"] == r["prompt_chars"] // 4 for r in generated)
    assert header["runtime"]["backend"] == "openai" and header["execution"]["concurrency"] == 3
    row = json.loads((tmp_path / "out" / "summary.json").read_text())["table"][0]
    # Overlapping requests' latencies are no time to divide by: the mean latency instead of a rate.
    assert row["tokens_per_second"] is None and row["mean_request_seconds"] >= 0.5


def test_one_endpoint_holds_all_of_a_rounds_requests_at_once(tmp_path, capsys):
    with Stub(delay=0.5) as a:
        path = write(tmp_path, scenario_text([a.url], agents=6, rounds=1, extra='concurrency = 8\nembedding_model = "server"'))
        assert live(capsys, path, "--out", str(tmp_path / "out"))[0] == 0
        assert a.max_in_flight == 6


def test_transient_errors_are_retried_and_a_malformed_answer_fails_in_one_line(tmp_path, capsys):
    flaky = {0: "503", 1: "503"}
    with Stub(behaviour=lambda n: flaky.get(n, "ok")) as s:
        path = write(tmp_path, scenario_text([s.url], extra='embedding_model = "server"\nretries = 2'))
        assert live(capsys, path, "--out", str(tmp_path / "ok"))[0] == 0
        assert len(s.bodies) == 4 * 2 + 2  # every message, and the two that were tried again
    with Stub(behaviour=lambda n: "ok" if n < 2 else "malformed") as s:
        path = write(tmp_path, scenario_text([s.url], extra='embedding_model = "server"\nretries = 1\nconcurrency = 1'))
        code, io = live(capsys, path, "--out", str(tmp_path / "bad"))
    assert code == 1
    (line,) = io.err.strip().splitlines()
    assert line.startswith(f"live.endpoints: {s.url} failed greedy round 1, agent ")
    assert "2 times (last: a response that is not JSON); every finished message is in" in line and "--resume" in line
    _, recs = records(tmp_path / "bad")
    assert [r["round"] for r in recs].count(1) == 2  # the two answers that arrived are kept
    assert "Traceback" not in io.err


def test_a_stalled_server_times_out_in_one_line(tmp_path, capsys):
    with Stub(behaviour=lambda n: "stall", stall_s=20) as s:
        path = write(tmp_path, scenario_text([s.url], extra='embedding_model = "server"\nretries = 1\ntimeout = 0.5'))
        t0 = time.monotonic()
        code, io = live(capsys, path, "--out", str(tmp_path / "out"))
        assert time.monotonic() - t0 < 15  # neither waits for the stalled answers nor retries forever
    assert code == 1
    assert "(last: no answer within live.timeout = 0.5 s)" in io.err and len(io.err.strip().splitlines()) == 1


def test_a_wrong_url_or_model_is_one_line_before_the_first_round(tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    code, io = live(capsys, write(tmp_path, scenario_text([closed])), "--out", str(tmp_path / "a"))
    assert code == 2 and io.err.startswith(f"live.endpoints[0]: {closed} cannot be reached (")
    with Stub(models=("gemma3", "smollm2")) as s:
        code, io = live(capsys, write(tmp_path, scenario_text([s.url], model="llama")), "--out", str(tmp_path / "b"))
    assert code == 2
    assert io.err.strip() == "live.model: no endpoint serves 'llama' (they serve: gemma3, smollm2)"
    assert not (tmp_path / "b" / "transcript.jsonl").exists()  # nothing was started


def test_models_are_routed_to_the_endpoints_that_serve_them(tmp_path, capsys):
    with Stub(models=("gemma3",)) as g, Stub(models=("smollm2",)) as s:
        text = scenario_text([g.url, s.url], extra='embedding_model = "minilm"').replace(
            'model = "stub"', 'model = ["gemma3", "smollm2", "gemma3", "smollm2"]'
        )
        assert live(capsys, write(tmp_path, text), "--out", str(tmp_path / "out"))[0] == 0
        assert {b["model"] for b in g.bodies} == {"gemma3"} and {b["model"] for b in s.bodies} == {"smollm2"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["table"][0]["by_group"]) == {"gemma3", "smollm2"}


def test_the_api_key_is_sent_and_never_stored(tmp_path, capsys, monkeypatch):
    secret = "sk-test-5f3c9a"
    monkeypatch.setenv("HIVEMIND_TEST_KEY", secret)
    with Stub() as s:
        text = scenario_text([s.url], extra='embedding_model = "server"\napi_key_env = "HIVEMIND_TEST_KEY"')
        assert live(capsys, write(tmp_path, text), "--out", str(tmp_path / "out"))[0] == 0
        assert {h.get("Authorization") for h in s.headers} == {f"Bearer {secret}"}
    for f in (tmp_path / "out").iterdir():
        if f.suffix in (".jsonl", ".json", ".csv", ".nc"):
            assert secret.encode() not in f.read_bytes(), f.name
    monkeypatch.delenv("HIVEMIND_TEST_KEY")
    code, io = live(capsys, write(tmp_path, text), "--out", str(tmp_path / "again"))
    assert code == 2 and io.err.strip() == "live.api_key_env: the environment variable HIVEMIND_TEST_KEY is not set"


def test_a_server_lost_mid_round_resumes_on_another_endpoint(tmp_path, capsys):
    with Stub(behaviour=lambda n: "ok" if n < 5 else "503") as s:
        path = write(tmp_path, scenario_text([s.url], extra='embedding_model = "server"\nretries = 0\nconcurrency = 1'))
        code, io = live(capsys, path, "--out", str(tmp_path / "out"))
    assert code == 1 and "(last: HTTP 503)" in io.err
    before = (tmp_path / "out" / "transcript.jsonl").read_bytes()
    assert sum(r["generated"] for r in records(tmp_path / "out")[1]) == 5
    with Stub() as fresh:
        code, io = live(capsys, path, "--out", str(tmp_path / "out"), "--resume", "--set", f'live.endpoints=["{fresh.url}"]')
        assert code == 0, io.err
        assert len(fresh.bodies) == 8 - 5  # only what the transcript lacked
    assert (tmp_path / "out" / "transcript.jsonl").read_bytes().startswith(before)
    _, recs = records(tmp_path / "out")
    assert sorted((r["round"], r["agent"]) for r in recs) == sorted((r, str(a)) for r in range(3) for a in range(1, 5))


# ---------------------------------------------------------------------------
# llama-cpp-python's own server on the default model


def start(path: str, out, rounds: int, resume: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "hivemind.cli", "live", path, "--out", str(out), "--formats", "png", "--quiet"]
    argv += ["--set", f"live.rounds={rounds}"] + (["--resume"] if resume else [])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_messages(proc: subprocess.Popen, out, n: int, wait_s: float = 180) -> None:
    deadline = time.monotonic() + wait_s
    t = out / "transcript.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if t.is_file() and t.read_text().count('"generated": true') >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run wrote fewer than {n} messages (status {proc.poll()})")


@pytest.fixture(scope="module")
def gemma():
    from hivemind.live.model import default_model

    return default_model(lambda s: None)


@pytest.mark.slow
def test_a_real_server_run_a_stall_and_a_resume(gemma, tmp_path, capsys):
    server = LlamaServer(gemma, log=tmp_path / "server.log").start()
    try:
        extra = 'chat = "none"\nretries = 1\ntimeout = 3\nembedding_model = "minilm"'
        path = write(tmp_path, scenario_text([server.url], model="gemma3", agents=3, rounds=2, extra=extra))
        code, io = live(capsys, path, "--out", str(tmp_path / "run"))
        assert code == 0, io.err
        header, recs = records(tmp_path / "run")
        generated = [r for r in recs if r["generated"]]
        assert len(generated) == 3 * 2 and all(r["text"] for r in generated)
        assert {r["served_model"] for r in generated} <= {"gemma3", str(gemma)}
        assert all(r["completion_tokens"] > 0 and r["prompt_tokens"] > 10 for r in generated)
        assert header["models"][0]["model"] == "gemma3" and header["models"][0]["sha256"] is None
        # Stalled mid-run (SIGSTOP): each try times out, the run stops in one line, the transcript stays.
        out = tmp_path / "stalled"
        proc = start(path, out, rounds=3)
        try:
            wait_for_messages(proc, out, 2)
            os.kill(server.proc.pid, signal.SIGSTOP)
            _, err = proc.communicate(timeout=120)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert proc.returncode == 1, err
        assert "(last: no answer within live.timeout = 3 s)" in err and len(err.strip().splitlines()) == 1
        n_kept = sum(r["generated"] for r in records(out)[1])
        assert 2 <= n_kept < 3 * 3
        code, io = live(capsys, path, "--out", str(out), "--resume", "--set", "live.rounds=3")
        assert code == 0, io.err
        resumed = records(out)[1]
        assert sorted((r["round"], r["agent"]) for r in resumed) == sorted((r, str(a)) for r in range(4) for a in range(1, 4))
    finally:
        server.stop()


@pytest.mark.slow
def test_a_killed_server_keeps_the_transcript_and_a_restarted_one_finishes_it(gemma, tmp_path):
    server = LlamaServer(gemma, log=tmp_path / "server.log").start()
    extra = 'chat = "none"\nretries = 1\ntimeout = 20\nconcurrency = 1\nembedding_model = "minilm"'
    path = write(tmp_path, scenario_text([server.url], model="gemma3", agents=3, rounds=4, extra=extra))
    out = tmp_path / "out"
    proc = start(path, out, rounds=4)
    try:
        wait_for_messages(proc, out, 2)
        server.stop()  # SIGKILL, mid-run
        _, err = proc.communicate(timeout=120)
    finally:
        server.stop()
    assert proc.returncode == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"live.endpoints: {server.url} failed greedy round ") and "--resume" in line
    kept = out.joinpath("transcript.jsonl").read_bytes()
    n_kept = sum(r["generated"] for r in records(out)[1])
    assert 2 <= n_kept < 3 * 4
    server.start()
    try:
        done = start(path, out, rounds=4, resume=True)
        _, err = done.communicate(timeout=600)
    finally:
        server.stop()
    assert done.returncode == 0, err
    assert out.joinpath("transcript.jsonl").read_bytes().startswith(kept)
    _, recs = records(out)
    assert sorted((r["round"], r["agent"]) for r in recs) == sorted((r, str(a)) for r in range(5) for a in range(1, 4))


def test_a_failed_round_does_not_wait_out_the_other_requests_retries(tmp_path):
    """One request refused for good, three stalled: the process reports the refusal and exits
    after at most one more timeout, not after the stalled requests' four tries each."""
    with Stub(behaviour=lambda n: "400" if n == 0 else "stall", stall_s=60) as s:
        extra = 'embedding_model = "minilm"\nretries = 3\ntimeout = 4\nconcurrency = 4'
        path = write(tmp_path, scenario_text([s.url], extra=extra))
        argv = [sys.executable, "-m", "hivemind.cli", "live", path, "--out", str(tmp_path / "out"), "--quiet"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        tries = len(s.bodies)
    assert done.returncode == 1 and "refused greedy round 1, agent" in done.stderr and "(HTTP 400" in done.stderr
    # Counted, not timed: round 1's three messages are one refused and two stalled. Waiting out the
    # stalled requests' retries would send each of them four times (1 + 2 x 4 requests); stopping
    # after the refusal sends each at most twice (one retry may start before the process ends).
    assert 3 <= tries <= 1 + 2 * 2, tries


def test_chat_by_model_sends_each_family_its_own_kind_of_prompt(tmp_path, capsys):
    """live.chat as a table: Gemma's text as written (/v1/completions), SmolLM2's through its chat
    template (/v1/chat/completions), in one population."""
    with Stub(models=("gemma3", "smollm2")) as s:
        text = scenario_text([s.url], extra='embedding_model = "server"\nchat = { gemma3 = "none" }').replace(
            'model = "stub"', 'model = ["gemma3", "smollm2", "gemma3", "smollm2"]'
        )
        assert live(capsys, write(tmp_path, text), "--out", str(tmp_path / "out"))[0] == 0
        kinds = {(b["model"], "prompt" in b, "messages" in b) for b in s.bodies}
    assert kinds == {("gemma3", True, False), ("smollm2", False, True)}


def test_chat_by_model_is_checked_and_part_of_the_identity():
    models = 'model = ["gemma3", "smollm2", "gemma3", "smollm2"]'
    plain = scenario_text(["http://127.0.0.1:1/v1"]).replace('model = "stub"', models)
    spec = parse_scenario(plain + 'chat = { smollm2 = "none" }\n', file="s.toml").live
    assert (spec.chat_of("gemma3"), spec.chat_of("smollm2")) == ("auto", "none")
    assert (
        parse_scenario(plain + 'chat = { smollm2 = "none" }\n', file="s.toml").fingerprint
        != parse_scenario(plain, file="s.toml").fingerprint
    )
    with pytest.raises(
        ScenarioError, match=r"s\.toml: live\.chat\.llama is not a model of live\.model \(models: gemma3, smollm2\)"
    ):
        parse_scenario(plain + 'chat = { llama = "none" }\n', file="s.toml")
    with pytest.raises(ScenarioError, match=r"live\.chat\.gemma3 must be 'auto' or 'none'"):
        parse_scenario(plain + 'chat = { gemma3 = "raw" }\n', file="s.toml")


def test_validate_names_the_models_and_the_servers(tmp_path, capsys):
    text = scenario_text(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]).replace(
        'model = "stub"', 'model = ["gemma3", "smollm2", "gemma3", "smollm2"]'
    )
    assert main(["validate", write(tmp_path, text)]) == 0
    assert "greedy decoding, models gemma3, smollm2 on 2 servers)" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# Probes on servers: /v1/completions, one token, the top log-probabilities


def test_probes_on_a_server_read_the_top_logprobs(tmp_path, capsys):
    import math

    # " Yes" and "Yes" both count for the answer Yes; "maybe" for none. Probabilities by hand.
    top = {" Yes": math.log(0.3), "Yes": math.log(0.1), "No": math.log(0.2), "maybe": math.log(0.4)}
    with Stub(logprobs=lambda prompt: top) as stub:
        extra = 'probe = true\nprobe_form = "own_yes_no"\nembedding_model = "server"'
        path = write(tmp_path, scenario_text([stub.url], agents=2, rounds=1, extra=extra))
        code, io = live(capsys, path, "--out", str(tmp_path / "out"))
        assert code == 0, io.err
        # Every probe is one token, greedy, asking for the top log-probabilities, after the message.
        assert all(b["max_tokens"] == 1 and b["temperature"] == 0.0 and b["logprobs"] == 20 for b in stub.probes)
        after = [b["prompt"] for b in stub.probes if "the river and" in b["prompt"]]
        assert after and all(p.endswith("Answer Yes or No.\nAnswer:") for p in after)
    _, recs = records(tmp_path / "out")
    value = (0.4 * 2 + 0.2 * -2) / 0.6
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    for r in recs:
        assert r["probe"] == pytest.approx(value) and r["probe_mass"] == pytest.approx(0.6)
        assert r["probe_entropy"] == pytest.approx(entropy)


def test_a_server_without_logprobs_is_refused_before_round_0(tmp_path, capsys):
    with Stub(logprobs=None) as stub:
        extra = 'probe = true\nprobe_form = "own_yes_no"\nembedding_model = "server"'
        path = write(tmp_path, scenario_text([stub.url], agents=2, rounds=1, extra=extra))
        code, io = live(capsys, path, "--out", str(tmp_path / "out"))
        assert not stub.bodies  # no message was asked for
    assert code == 2
    err = io.err.strip()
    assert len(err.splitlines()) == 1
    assert "live.probe: " in err and "answered without log-probabilities (logprobs); this server cannot be probed" in err


@pytest.mark.slow
def test_probes_through_a_real_llama_cpp_python_server_match_in_process(gemma, tmp_path):
    """The same prompts probed through llama-cpp-python's server and in this process: the server
    lists its top 20 tokens, so answers it lists carry the in-process probability."""
    import numpy as np

    from hivemind.live.backends import LlamaBackend
    from hivemind.live.backends.server import ServerBackend
    from hivemind.live.config import parse_scenario as parse_live_scenario
    from hivemind.live.probe import FORMS

    server = LlamaServer(gemma, log=tmp_path / "server.log").start()
    try:
        spec = parse_live_scenario(scenario_text([server.url], model="gemma3", extra='chat = "none"')).live
        remote = ServerBackend(spec)
        remote.check(["gemma3"])
        remote.check_probe("gemma3")
        local = LlamaBackend(gemma, 512, 2, chat="none", batch=1)
        form = FORMS["own_yes_no"]
        question = "\n\n" + form.render("The river is the only road home.") + "\nAnswer:"
        texts = ["We should follow the river home.", "The river will not take us home.", "Let us cross the hills."]
        prefix = "A discussion group. The leader says: follow the river.\nAnna:"
        far = remote.probe(
            remote.tokenize(prefix, False),
            [remote.tokenize(f" {t}{question}", False) for t in texts],
            remote.answer_spellings(form),
        )
        marks = local.answer_spellings(form)
        near = local.probe(local.tokenize(prefix, True), [local.tokenize(f" {t}{question}", False) for t in texts], marks)
        # In-process: per answer, the sum over its single-token spellings.
        near = np.stack([near[:, [k for k, a in enumerate(marks.answer) if a == j]].sum(axis=1) for j in range(2)], axis=1)
        assert far.shape == near.shape == (3, 2)
        assert (far > 0).all()  # Yes and No are among the top 20 after such a question
        np.testing.assert_allclose(far, near, atol=0.03)
        local.close()
        remote.close()
    finally:
        server.stop()
