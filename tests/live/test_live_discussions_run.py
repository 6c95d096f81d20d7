"""Live discussions without an anchor, in many disjoint small groups, with the fake backend:
who hears whom, what is measured (and what is left out), and ``hivemind fit`` on the result."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from hivemind import ScenarioError, parse_scenario
from hivemind.cli import main
from hivemind.live.backends import FakeBackend
from hivemind.live.run import run_live

STATEMENT = "the river is the only road home"
PAIRS = 12
STANCES = [(-2, 2), (-1, 1), (0, 2), (2, -2), (1, 0), (-2, -1)] * (PAIRS // 6)


def scenario_text(pairs: int = PAIRS, extra: str = "") -> str:
    stances = [s for pair in STANCES[:pairs] for s in pair]
    return f"""
name = "pairs"
[graph]
kind = "groups"
size = 2
count = {pairs}
[live]
rounds = 3
max_tokens = 5
topic = "the way home"
probe_statement = "{STATEMENT}"
stances = {stances}
probe = true
probe_form = "own"
fit = false
{extra}
"""


def stance_logits(prompt: str) -> dict[str, float]:
    """The fake states the stance its persona names, pulled toward "3" the more rounds it has heard."""
    heard = prompt.count(" : ")  # neighbour lines "name : text" in the fake's words
    for word, answer in (("strongly disagrees", "1"), ("strongly agrees", "5"), ("disagrees", "2"), ("agrees", "4")):
        if word in prompt:
            return {answer: 3.0, "3": 0.5 * heard}
    return {"3": 3.0}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def geodesic(u, v):
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    return float(np.arccos(np.clip(u @ v, -1.0, 1.0)))


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    fake = FakeBackend(logits=stance_logits)
    res = run_live(parse_scenario(scenario_text(), file="pairs.toml"), out, backend=fake, say=lambda s: None)
    return out, res, fake


def test_each_agent_hears_only_its_partner(pairs_run):
    out, res, fake = pairs_run
    # Round 1 on: an agent's prompt holds its partner's line and nobody else's.
    for prompt in fake.prompts:
        me = re.search(r"(\d+) : $", prompt) or re.search(r"(\d+) :$", prompt)
        if me is None or "states an opinion" in prompt:
            continue
        i = int(me.group(1))
        partner = i ^ 1
        names = {int(n) for n in re.findall(r"(?:^|\n| )(\d+) : ", prompt)}
        assert names <= {i, partner}, (i, names)
    header = json.loads((out / "transcript.jsonl").read_text().splitlines()[0])
    assert header["anchor"] is None and header["anchor_text"] is None and header["topic"] == "the way home"


def test_no_anchor_measure_is_computed_against_nothing(pairs_run):
    out, res, _ = pairs_run
    agents = read_csv(out / "agents.csv")
    assert set(agents[0]) == {"decoding", "round", "agent", "conversation", "probe", "probe_entropy", "probe_mass"}
    rounds = read_csv(out / "rounds.csv")
    assert not {"compliance", "jaccard_to_anchor", "embedding_distance_to_anchor"} & set(rounds[0])
    assert "distance_to_anchor" not in res.dataset and "anchor_embedding" not in res.dataset
    assert [int(a["conversation"]) for a in agents[: 2 * PAIRS]] == [k // 2 for k in range(2 * PAIRS)]
    assert res.summary["discussions"] == PAIRS and res.summary["anchor"] is None


def test_agreement_within_discussions_matches_a_direct_computation(pairs_run):
    out, res, fake = pairs_run
    t = res.trajectories[0]
    for r, texts in enumerate(t.texts):
        pairs = [(texts[2 * k], texts[2 * k + 1]) for k in range(PAIRS)]
        expected = np.mean([geodesic(fake.embed(a), fake.embed(b)) for a, b in pairs])
        # arccos of the cosine loses about half the digits for near vectors: 1e-7, not 1e-12.
        assert t.rows[r].metrics["within_discussion_distance"] == pytest.approx(expected, abs=1e-7)
        probes = [float(a["probe"]) for a in read_csv(out / "agents.csv") if int(a["round"]) == r]
        gap = np.mean([abs(probes[2 * k] - probes[2 * k + 1]) for k in range(PAIRS)])
        assert t.rows[r].metrics["within_discussion_probe_gap"] == pytest.approx(gap, abs=1e-9)


def test_the_discussions_table_feeds_hivemind_fit(pairs_run, tmp_path, capsys):
    out, res, _ = pairs_run
    table = read_csv(out / "discussions_greedy.csv")
    assert set(table[0]) == {"conversation", "round", "agent", "node", "stance", "opinion", "text"}
    assert [(r["agent"], r["node"]) for r in table[:4]] == [("0", "0"), ("1", "1"), ("0", "2"), ("1", "3")]
    assert [int(r["stance"]) for r in table[: 2 * PAIRS]] == [s for p in STANCES for s in p]
    code = main(["fit", str(out), "--out", str(tmp_path / "fit"), "--models", "peer,attractor[stance]"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert doc["data"]["conversations"] == PAIRS and doc["data"]["agents"] == 2 * PAIRS
    assert doc["data"]["attractor_groups"]["column"] == "stance"


def test_a_run_of_pairs_fits_its_probes_over_held_out_discussions(tmp_path):
    sc = parse_scenario(scenario_text(extra="").replace("fit = false", "fit = true"), file="pairs.toml")
    res = run_live(sc, tmp_path, backend=FakeBackend(logits=stance_logits), say=lambda s: None)
    fit = res.summary["discussion_fit"]["greedy"]
    assert fit["fit"]["data"]["conversations"] == PAIRS
    assert fit["fit"]["design"]["heldout_conversations"] == PAIRS // 2
    assert "held-out skill against persistence" in fit["line"]


@pytest.mark.parametrize(
    "extra, remove, message",
    [
        ("", 'topic = "the way home"', r"^pairs\.toml: live\.topic must say what the agents discuss"),
        ('anchor_text = "x"', "", r"^pairs\.toml: live\.anchor_text needs an \[anchor\] node"),
        ("", f'probe_statement = "{STATEMENT}"', r"^pairs\.toml: live\.probe needs live\.probe_statement"),
        ('prompt = "{anchor} {neighbours}"', "", r"^pairs\.toml: live\.prompt has an unknown field \{anchor\}"),
    ],
)
def test_a_discussion_without_an_anchor_is_checked_in_one_line(extra, remove, message):
    text = scenario_text(extra=extra)
    if remove:
        text = text.replace(remove, "")
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text, file="pairs.toml")


def test_groups_graph_and_the_engine_refuse_what_they_cannot_do(tmp_path, capsys):
    # Sizes that could not be built on any machine are refused before any array is allocated.
    with pytest.raises(ScenarioError, match=r"graph \(size 100,000, count 3\) makes 300,000 nodes and 14,999,850,000 edges"):
        parse_scenario(scenario_text(3).replace("size = 2", "size = 100000"), file="pairs.toml")
    with pytest.raises(ScenarioError, match=r"graph\.n is 5 but 3 groups of 2 make 6 nodes"):
        parse_scenario(scenario_text(3).replace("count = 3", "count = 3\nn = 5"), file="pairs.toml")
    path = tmp_path / "pairs.toml"
    path.write_text(scenario_text(3))
    assert main(["validate", str(path)]) == 0
    said = capsys.readouterr().out
    assert "pairs: 6 agents, 3 edges, no anchor; live: 6 language-model agents, 3 rounds" in said
    # Every command that runs the engine refuses it in one line, before claiming its output directory.
    for argv in (["run"], ["sweep", "--grid", "dynamics.step_size=0.1,0.2"], ["paths"], ["entropy"]):
        out = tmp_path / argv[0]
        code = main([argv[0], str(path), *argv[1:], "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, argv
        assert "anchor is needed here; a scenario without one runs only as a live discussion" in err
        assert not out.exists(), argv
