"""Sizes checked before anything is allocated: a run that cannot fit this machine is one line naming the key."""

from __future__ import annotations

import pytest

from hivemind.scenario.graphs import machine_memory
from hivemind.scenario.spec import ScenarioError
from tests.helpers import scenario


def test_memory_bytes_counts_every_seeds_states_and_edge_temporaries():
    """The estimate against its parts counted by hand: float32 on S^3 (ambient 4), 3 seeds, a cycle of 50."""
    from hivemind.runner.simulate import memory_bytes, output_bytes

    s = scenario(graph={"kind": "cycle", "n": 50}, manifold={"kind": "sphere", "dim": 3}, run={"seeds": [0, 1, 2]})
    states = 3 * (4 + 1) * 50 * 4 * 4  # seeds x (state copies + the gradient rule's) x n x D x float32
    edges = 3 * 4 * (2 * 50) * 4 * 4  # seeds x 4 temporaries x both directions of 50 ties x D x float32
    records_in_flight = memory_bytes(s) - states - edges - output_bytes(s)
    assert 0 < records_in_flight <= output_bytes(s)


def test_a_run_larger_than_the_machine_is_refused_before_it_allocates(monkeypatch):
    from hivemind.runner import simulate as sim

    memory = machine_memory()
    if memory is None:
        pytest.skip("the system does not say how much memory it has")
    s = scenario(graph={"kind": "cycle", "n": 1000}, run={"seeds": list(range(8))})
    monkeypatch.setattr(sim, "point_bytes", lambda scenario: 2 * memory)  # as if each seed were enormous
    monkeypatch.setattr(sim, "engine_inputs", lambda *a: pytest.fail("the run started allocating"))
    with pytest.raises(ScenarioError) as e:
        sim.simulate(s)
    assert e.value.key == "run.seeds" and "GiB in memory at once: more than this machine's" in str(e.value)
    assert "\n" not in str(e.value)


def test_many_seeds_of_a_large_population_are_refused_for_real():
    """No stand-in: 4 000 seeds of 200 000 agents on S^15 (about a terabyte of states) is refused."""
    from hivemind.runner.simulate import check_memory

    if machine_memory() is None or machine_memory() > 2**40:
        pytest.skip("a machine with more than a terabyte would run it")
    s = scenario(
        graph={"kind": "preferential_attachment", "n": 200_000, "params": {"m": 3}},
        manifold={"kind": "sphere", "dim": 15},
        run={"seeds": list(range(4000))},
        dynamics={"steps": 10},
    )
    with pytest.raises(ScenarioError, match=r"run.seeds makes 4000 seeds x 200,000 agents"):
        check_memory(s)
