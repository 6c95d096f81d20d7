"""Sweeps of live runs with the fake backend: points, seeds, the table, resume, bad keys."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hivemind.cli import main
from hivemind.live.backends import FakeBackend
from hivemind.live.sweep import sweep_live
from hivemind.runner.sweep import Grid, SweepError
from tests.live.test_live import SCENARIO, scenario

OVER = ['live.decoding="stochastic"', "live.rounds=2", "live.fit=true", "live.seed=5"]


def test_every_point_and_seed_is_a_live_run_and_the_table_gathers_them(tmp_path):
    grid = Grid(("live.temperature",), ((0.3, 1.2),))
    res = sweep_live(
        scenario(overrides=OVER), grid, tmp_path, seeds=2, backend=FakeBackend(), say=lambda s: None, formats=("png",)
    )
    t = res.table
    assert len(t) == 2 * 2 and list(t["live.temperature"]) == [0.3, 0.3, 1.2, 1.2] and list(t["seed"]) == [0, 1, 0, 1]
    texts = {}
    for _, row in t.iterrows():
        run = tmp_path / f"live.temperature={row['live.temperature']}" / f"seed-{row['seed']}"
        lines = [json.loads(x) for x in (run / "transcript.jsonl").read_text().splitlines()]
        assert lines[0]["seed"] == 5 + row["seed"]  # seed s runs live.seed + s
        assert all(r["sampling"]["temperature"] == row["live.temperature"] for r in lines[1:] if r["generated"])
        summary = json.loads((run / "summary.json").read_text())
        assert row["mean_compliance"] == summary["table"][0]["mean_compliance"]
        assert row["final_vendi_score"] == summary["table"][0]["final_vendi_score"]
        assert row["anchor_coupling"] == summary["fit"]["stochastic"]["models"]["peer"]["params"]["anchor_coupling"]
        texts[(row["live.temperature"], row["seed"])] = [r["text"] for r in lines[1:] if r["generated"]]
    assert texts[(0.3, 0)] != texts[(0.3, 1)]  # the seeds draw differently
    on_disk = pd.read_csv(tmp_path / "live_sweep.csv")
    pd.testing.assert_frame_equal(on_disk, t.astype(on_disk.dtypes.to_dict()), check_dtype=False)
    assert (tmp_path / "live_sweep.png").stat().st_size > 0
    # Resumed, nothing is generated again and the table is the same.
    fake = FakeBackend()
    again = sweep_live(
        scenario(overrides=OVER), grid, tmp_path, seeds=2, resume=True, backend=fake, say=lambda s: None, formats=()
    )
    assert fake.prompts == []
    pd.testing.assert_frame_equal(again.table, t)


def test_a_key_the_scenario_refuses_names_it():
    with pytest.raises(SweepError, match=r"^fake.toml: live.temperature must be >= 0"):
        sweep_live(scenario(), Grid(("live.temperature",), ((-1.0,),)), "unused", backend=FakeBackend(), say=lambda s: None)


def test_cli_bad_grids_are_one_line_and_status_2(tmp_path, capsys):
    path = tmp_path / "live.toml"
    path.write_text(SCENARIO)
    for grid, message in (
        ("live.temperature", "--grid expects KEY=VALUES"),
        ("live.temperature=-1", "live.temperature must be >= 0"),
    ):
        code = main(["live", str(path), "--out", str(tmp_path / "o"), "--grid", grid, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
    code = main(["live", str(path), "--out", str(tmp_path / "o"), "--seeds", "0"])
    assert code == 2 and "--seeds" in capsys.readouterr().err
