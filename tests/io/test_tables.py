"""Tables and NetCDF files of many discussions in, through ``hivemind fit``: every format gives
the same data, every bad table one line with exit status 2 and nothing in OUT."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from hivemind.cli import main
from hivemind.io.tables import read, read_netcdf
from hivemind.io.trajectories import DataError

HEADER = "conversation,round,agent,stance,opinion"


def rows(c: int = 12, rounds: int = 4, seed: int = 0) -> list[str]:
    """Two-agent discussions: each moves 0.3 of the way to the other, plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(c):
        stance = rng.integers(-2, 3, 2)
        x = stance * 0.5 + rng.normal(0, 0.2, 2)
        for r in range(rounds):
            for a in range(2):
                out.append(f"d{k:03d},{r},{a},{stance[a]},{x[a]:.6f}")
            x = x + 0.3 * (x[::-1] - x) + rng.normal(0, 0.05, 2)
    return out


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_csv_and_json_lines_give_the_same_discussions(tmp_path):
    lines = rows()
    csv = write_csv(tmp_path / "d.csv", lines)
    records = [dict(zip(HEADER.split(","), line.split(","), strict=True)) for line in lines]
    for r in records:
        r["round"], r["opinion"], r["stance"] = int(r["round"]), float(r["opinion"]), int(r["stance"])
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records))
    a, b = read(csv), read(jsonl)
    assert a.y.shape == (4, 24, 1) and a.valid.all()
    np.testing.assert_array_equal(a.y, b.y)
    assert a.conversations == b.conversations and a.groups == ("-2", "-1", "0", "1", "2")
    # Everyone in a discussion hears the other; nobody hears another discussion.
    assert np.all(a.conversation[a.src] == a.conversation[a.dst]) and a.src.size == 24
    # Rows run by discussion, round, agent: discussion 1, round 2, agent 1 is agent 3 of the panel.
    assert a.y[2, 3, 0] == float(lines[1 * 8 + 2 * 2 + 1].split(",")[-1])


def test_parquet_reads_with_pyarrow_or_says_what_it_needs(tmp_path):
    import pandas as pd

    frame = pd.DataFrame([line.split(",") for line in rows()], columns=HEADER.split(","))
    path = tmp_path / "d.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(DataError, match="pyarrow"):
            read(path)
        return
    frame.to_parquet(path)
    np.testing.assert_array_equal(read(path).y, read(write_csv(tmp_path / "d.csv", rows())).y)


def test_hivemind_fit_on_a_csv_of_scalar_opinions(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", rows(c=40, rounds=5))
    out = tmp_path / "fit"
    code = main(["fit", str(path), "--out", str(out), "--models", "peer,peer+decay,attractor[stance]", "--folds", "3"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].startswith("best (chosen on training data")
    doc = json.loads((out / "fit.json").read_text())
    schema = json.loads(
        (Path(__import__("hivemind.theory.fitting").theory.fitting.__file__).parent / "fit.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert doc["space"] == "euclidean" and doc["data"]["conversations"] == 40
    assert doc["design"]["heldout_conversations"] == 20
    # The data moved 0.3 of the way each round: the peer coupling says so.
    lo, hi = doc["models"]["peer"]["intervals"]["peer_coupling"]
    assert lo < 0.3 < hi
    # A document that breaks the schema is caught by it.
    del doc["models"]["peer"]["params"]["noise"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_a_netcdf_file_with_a_conversation_dimension_and_one_of_one_dimension(tmp_path, capsys):
    import xarray as xr

    table = read(write_csv(tmp_path / "d.csv", rows(c=30, rounds=5)))
    y = table.y.reshape(5, 30, 2, 1).transpose(1, 0, 2, 3).copy()
    y[0, 4, 1] = np.nan  # a shorter discussion: one agent's last round missing...
    y[0, 4, 0] = np.nan  # ...and the other's: the discussion has 4 rounds
    path = tmp_path / "d.nc"
    xr.Dataset({"opinion": (("conversation", "round", "agent", "coord"), y)}).to_netcdf(path, engine="h5netcdf")
    d = read_netcdf(path)
    assert d.valid.sum() == 30 * 5 * 2 - 2 and d.missing == 0
    assert main(["fit", str(path), "--out", str(tmp_path / "a"), "--models", "peer", "--folds", "2"]) == 0
    # One conversation of one coordinate (it used to end in ZeroDivisionError).
    one = tmp_path / "one.nc"
    xr.Dataset({"embedding": (("round", "agent", "coord"), y[:, :, 0, :].transpose(1, 0, 2)[:4])}).to_netcdf(
        one, engine="h5netcdf"
    )
    assert main(["fit", str(one), "--out", str(tmp_path / "b"), "--models", "peer,fj", "--train", "2"]) == 0
    doc = json.loads((tmp_path / "b" / "fit.json").read_text())
    assert doc["data"]["conversations"] == 1 and "fitted on the earlier ones" in doc["design"]["selection"]
    capsys.readouterr()


def _bad(tmp_path, lines, header=HEADER, name="d.csv"):
    return write_csv(tmp_path / name, lines, header)


BAD = {
    "missing column": (lambda t: _bad(t, rows(), "conversation,round,agent,stance,view"), "column 'opinion' is missing"),
    "not a number": (
        lambda t: _bad(t, [*rows()[:5], "d000,9,0,1,lots"]),
        "column 'opinion', row 6: 'lots' is not a finite number",
    ),
    "texts": (
        lambda t: _bad(t, [*rows()[:3], "d000,9,0,1,I agree with you"]),
        "column 'opinion', row 4: 'I agree with you' is not a finite number (a text column? give it with --text)",
    ),
    "duplicate": (lambda t: _bad(t, [*rows()[:8], rows()[3]]), "row 9: conversation 'd000', round 1, agent '1' appears twice"),
    "missing round": (lambda t: _bad(t, rows()[:3] + rows()[4:]), "agent '1' of conversation 'd000' has no row for round 1"),
    "one round": (lambda t: _bad(t, [*rows()[:8], "zz,0,0,1,0.5", "zz,0,1,1,0.2"]), "row 9: conversation 'zz' has one round"),
    "empty": (lambda t: (t / "d.csv").write_text("") or t / "d.csv", "the file is empty"),
    "round not whole": (
        lambda t: _bad(t, [*rows()[:2], "d000,1.5,0,1,0.1"]),
        "column 'round', row 3: '1.5' is not a whole number",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tables_are_one_line_and_leave_out_untouched(case, tmp_path, capsys):
    make, message = BAD[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
    assert not out.exists()


def test_missing_drop_counts_what_it_leaves_out(tmp_path):
    lines = rows()
    path = _bad(tmp_path, lines[:3] + lines[4:])  # d000's agent 1 has no round 1
    d = read(path, missing="drop")
    assert d.missing == 1
    from hivemind.theory.fitting import make_panel

    p = make_panel(d.y, d.valid, d.conversation, d.src, d.dst, space="euclidean")
    # Agent 1's transitions 0->1 and 1->2 are gone, and agent 0's 1->2 (it heard agent 1 at round 1).
    assert p.usable.sum() == 24 * 3 - 3 and p.dropped == 1


def test_an_edge_to_another_discussion_is_refused(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", rows())
    edges = tmp_path / "edges.csv"
    edges.write_text("conversation,src,dst\nd000,0,1\nd000,5,1\n")
    assert main(["fit", str(path), "--edges", str(edges), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "edges.csv: column 'src', row 2: agent '5' is not in conversation 'd000'" in err


@pytest.mark.parametrize(
    "models, message",
    [
        ("nonsense", "--models: unknown model 'nonsense'"),
        ("groups[framing]", "--models: model 'groups[framing]': the data's groups come from 'stance'"),
        ("anchor", "--models: model 'anchor' needs an anchor"),
    ],
)
def test_a_model_the_data_cannot_carry_is_one_line_before_out_exists(models, message, tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", rows())
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--models", models]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--folds", "100000", "--folds must be at most the 6 training discussions, got 100000"),
        ("--train", "99", "--train must be from 1 to 3 transitions, got 99"),
    ],
)
def test_a_design_the_data_cannot_carry_is_one_line_before_out_exists(flag, value, message, tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", rows())  # 12 discussions of 4 rounds: 6 held out
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
