"""Opinion probes with the fake backend: the reading's arithmetic, the answer tokens, and a run.

Expected values are computed here by hand from the logits the tests set (a softmax written
out with math.exp), never with hivemind.live.probe's own functions.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from hivemind import ScenarioError, parse_scenario
from hivemind.live.backends import FakeBackend
from hivemind.live.geometry import CHECK_SET
from hivemind.live.probe import FORMS, ProbeError, check_set_probe, read, spellings
from hivemind.live.run import run_live

ANCHOR = "the river is the only road home"


def by_hand(logits: dict[str, float], answers: list[str], values: list[float], others: float = 0.0):
    """(value, entropy, mass) from token logits: softmax over the answers, the other listed tokens
    and one more token of logit ``others`` that stands for the rest of the vocabulary."""
    z = sum(math.exp(v) for v in logits.values()) + sum(math.exp(0.0) for a in answers if a not in logits) + math.exp(others)
    p = [math.exp(logits.get(a, 0.0)) / z for a in answers]
    mass = sum(p)
    q = [x / mass for x in p]
    return sum(qi * v for qi, v in zip(q, values, strict=True)), -sum(qi * math.log(qi) for qi in q if qi > 0), mass


def test_a_reading_is_the_expected_value_entropy_and_mass_of_the_answers():
    # Two spellings of the first answer ("1" and " 1") add up; the rest of the vocabulary holds 0.4.
    r = read([0.1, 0.05, 0.15, 0.0, 0.2, 0.1], [0, 0, 1, 2, 3, 4], [-2, -1, 0, 1, 2])
    q = np.array([0.15, 0.15, 0.0, 0.2, 0.1]) / 0.6
    assert r.mass == pytest.approx(0.6)
    assert r.value == pytest.approx(float(q @ [-2, -1, 0, 1, 2]))
    assert r.entropy == pytest.approx(-sum(x * math.log(x) for x in q if x > 0))
    # No mass on any answer (a server that listed none among its top tokens): no value, not 0.
    empty = read([0.0, 0.0], [0, 1], [2, -2])
    assert math.isnan(empty.value) and empty.mass == 0


def test_the_fake_backends_probe_is_the_softmax_of_the_logits_the_test_sets():
    logits = {"4": 1.5, "5": math.log(3.0), "banana": 2.0}
    fake = FakeBackend(logits=lambda prompt: logits)
    form = FORMS["own"]
    marks = spellings(form, fake.tokenize)
    # The fake's words drop the space: "3" and " 3" are one token, so one spelling per answer.
    assert [form.answers[a] for a in marks.answer] == list(form.answers)
    (probs,) = fake.probe(fake.tokenize("a b", True), [fake.tokenize("c", False)], marks)
    r = read(probs, marks.answer, form.values)
    value, entropy, mass = by_hand(logits, list(form.answers), list(form.values))
    assert (r.value, r.entropy, r.mass) == pytest.approx((value, entropy, mass), rel=1e-12)


def test_an_answer_that_is_not_one_token_is_refused_in_one_line():
    from hivemind.live.probe import Form

    form = Form("two_words", "Agree? {statement}", ("strongly agree", "no"), (2.0, -2.0))
    with pytest.raises(ProbeError, match=r"^live\.probe: the answer 'strongly agree' .* is not one token for fake"):
        spellings(form, FakeBackend().tokenize, "fake")


def test_the_check_set_separation_counts_pairs_by_hand():
    # A model that answers "5" after a paraphrase and "1" after anything else.
    fake = FakeBackend()
    # The fake's prompt is its tokens' words joined by spaces: a sentence appears in it in that form.
    paraphrases = [" ".join(fake._words[t] for t in fake.tokenize(s, False)) for s in CHECK_SET["paraphrase"]]

    def logits(prompt):
        return {"5": 5.0} if any(p in prompt for p in paraphrases) else {"1": 5.0}

    fake.logits = logits
    sep = check_set_probe(fake, FORMS["own"], "fake")
    assert sep.negation_auc == 1.0 and sep.agreement_auc == 1.0 and sep.reliable
    _, _, mass = by_hand({"5": 5.0}, list(FORMS["own"].answers), list(FORMS["own"].values))
    assert sep.mean_mass["paraphrase"] == pytest.approx(mass)
    # A model that answers the same whatever it read: chance, and marked unreliable.
    flat = check_set_probe(FakeBackend(logits=lambda p: {"3": 1.0}), FORMS["own"], "fake")
    assert flat.negation_auc == 0.5 and not flat.reliable


SCENARIO = f"""
name = "probed"
[graph]
kind = "edges"
n = 4
edges = [[0, 1], [1, 2], [2, 3]]
[anchor]
node = 0
[live]
rounds = 2
max_tokens = 5
anchor_text = "{ANCHOR}"
rule = {{ kind = "phrase", text = "the river" }}
initial_texts = ["alpha one start", "bravo two start", "charlie three start"]
stances = [-2, 0, 2]
probe = true
probe_form = "own"
fit = false
"""


def logits_from_stance(prompt: str) -> dict[str, float]:
    """The fake's answer follows the stance written into the agent's persona (the fake's prompt
    is its words; the persona line says "<agent> strongly disagrees with ..."), else "3"."""
    if "strongly disagrees" in prompt:
        return {"1": 3.0, "2": 1.0}
    if "strongly agrees" in prompt:
        return {"5": 3.0, "4": 1.0}
    return {"3": 2.0}


def test_a_probed_run_writes_every_agents_reading_in_every_table(tmp_path):
    sc = parse_scenario(SCENARIO, file="probed.toml")
    fake = FakeBackend(logits=logits_from_stance)
    res = run_live(sc, tmp_path, backend=fake, say=lambda s: None)
    with open(tmp_path / "agents.csv") as f:
        rows = list(csv.DictReader(f))
    answers, values = list(FORMS["own"].answers), list(FORMS["own"].values)
    by_stance = {
        "1": by_hand({"1": 3.0, "2": 1.0}, answers, values),
        "2": by_hand({"3": 2.0}, answers, values),
        "3": by_hand({"5": 3.0, "4": 1.0}, answers, values),
    }
    assert len(rows) == 3 * 3
    for row in rows:
        value, entropy, mass = by_stance[row["agent"]]
        assert float(row["probe"]) == pytest.approx(value, abs=1e-9)
        assert float(row["probe_entropy"]) == pytest.approx(entropy, abs=1e-9)
        assert float(row["probe_mass"]) == pytest.approx(mass, abs=1e-9)
    # The given first messages are probed too, after the opening prompt, as if the agents wrote them.
    transcript = [json.loads(line) for line in (tmp_path / "transcript.jsonl").read_text().splitlines()[1:]]
    assert all("probe" in r for r in transcript)
    with open(tmp_path / "rounds.csv") as f:
        rounds = list(csv.DictReader(f))
    expected = np.mean([v[0] for v in by_stance.values()])
    assert all(float(r["probe_mean"]) == pytest.approx(expected, abs=1e-9) for r in rounds)
    assert float(rounds[0]["probe_sd"]) == pytest.approx(np.std([v[0] for v in by_stance.values()]), abs=1e-9)
    assert res.dataset.probe.dims == ("decoding", "round", "agent")
    # Every probe prompt ends with the question about the anchor's message.
    assert all(p.endswith("Answer :") or p.endswith("Answer") for p in fake.probed[-3:]), fake.probed[-1][-80:]
    probes = res.summary["probes"]["default"]
    assert probes["form"] == "own" and set(probes["check_set"]["mean"]) == set(CHECK_SET)
    assert res.summary["table"][0]["final_probe"] == pytest.approx(expected, abs=1e-9)


def test_stances_are_written_into_the_personas(tmp_path):
    sc = parse_scenario(SCENARIO.replace("probe = true", "probe = false"), file="probed.toml")
    fake = FakeBackend()
    run_live(sc, tmp_path, backend=fake, say=lambda s: None)
    first = [p for p in fake.prompts if "1 strongly disagrees with the statement" in p]
    assert first and all(ANCHOR in p for p in first)
    assert any("3 strongly agrees with the statement" in p for p in fake.prompts)
    assert any("2 neither agrees nor disagrees with the statement" in p for p in fake.prompts)


@pytest.mark.parametrize(
    "change, key",
    [
        ("stances = [-2, 0, 3]", r"^probed\.toml: live\.stances\[2\] must be an integer from -2 to 2, got 3$"),
        ("stances = [-2, 0]", r"^probed\.toml: live\.stances must have one stance per peripheral agent \(3\), got 2$"),
        ('stance_prompt = "{agent} thinks"', r"^probed\.toml: live\.stance_prompt must contain \{stance\}$"),
        ('probe_form = "vibes"', r"^probed\.toml: live\.probe_form must be one of auto, own, judge, .*, got 'vibes'$"),
    ],
)
def test_bad_stances_and_probe_keys_are_one_line_errors(change, key):
    key_of = change.split(" =")[0]
    line = next(li for li in SCENARIO.splitlines() if li.startswith(key_of + " =")) if key_of + " =" in SCENARIO else None
    text = SCENARIO.replace(line, change) if line else SCENARIO + change + "\n"
    with pytest.raises(ScenarioError, match=key):
        parse_scenario(text, file="probed.toml")


def test_probe_every_probes_round_0_every_kth_round_and_the_last(tmp_path):
    """live.probe_every = 2 over five rounds: rounds 0, 2, 4 and 5 are asked (the fake backend counts
    the questions), the others' probe columns are empty, and the key needs live.probe."""
    counts = {}
    for every in (1, 2):
        fake = FakeBackend(logits=logits_from_stance)
        sc = parse_scenario(SCENARIO, file="probed.toml", overrides=["live.rounds=5", f"live.probe_every={every}"])
        res = run_live(sc, tmp_path / str(every), backend=fake, say=lambda s: None)
        counts[every] = len(fake.probed)
        rows = res.trajectories[0].rows
        probed = [r.round for r in rows if np.isfinite(r.metrics["probe_mean"])]
        assert probed == ([0, 1, 2, 3, 4, 5] if every == 1 else [0, 2, 4, 5])
    assert counts[1] - counts[2] == 2 * 3  # rounds 1 and 3 asked none of the three agents
    with pytest.raises(ScenarioError, match=r"^probed\.toml: live\.probe_every applies to live\.probe = true only$"):
        parse_scenario(SCENARIO, file="probed.toml", overrides=["live.probe=false", "live.probe_every=2"])
