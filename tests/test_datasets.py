"""hivemind.datasets: the published tables inside the package, with their licence and citation,
loaded by name and usable wherever a table's path is."""

from __future__ import annotations

import hashlib
import json

import pytest

from hivemind import datasets
from hivemind.cli import main


@pytest.mark.parametrize(
    "name,discussions,rows", [("brockers2025_mixtral", 1229, 14748), ("brockers2025_dolphin_mixtral", 1195, 14340)]
)
def test_each_dataset_loads_as_its_readme_describes(name, discussions, rows):
    frame = datasets.load(name)
    # The counts of the README beside the files (the publication's own), not of the loader.
    assert frame.shape[0] == rows and frame["conversation"].nunique() == discussions
    assert list(frame.columns) == ["conversation", "round", "agent", "stance", "framing", "opinion"]
    assert set(frame["round"]) == set(range(6)) and frame["opinion"].between(-2, 2).all()
    assert datasets.path(f"dataset:{name}") == datasets.path(name)
    assert "BSD-3-Clause" in datasets.cite(name) and "Priesemann" in datasets.cite(name)
    text = datasets.licence_text(name)
    assert "Redistribution and use in source and binary forms" in text and "Priesemann-Group" in text


def test_the_cli_lists_and_cites(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert all(f"hivemind fit dataset:{n}" in out for n in datasets.names())
    assert main(["datasets", "cite", "brockers2025_mixtral"]) == 0
    assert "Brockers" in capsys.readouterr().out
    assert main(["datasets", "cite", "brockers2025"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such dataset" in err and "brockers2025_mixtral" in err


def test_fit_takes_a_dataset_by_name(tmp_path, capsys):
    out = tmp_path / "fit"
    argv = ["fit", "dataset:brockers2025_dolphin_mixtral", "--models", "peer", "--folds", "2", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "fit.json").read_text())
    assert doc["data"]["file"] == "dataset:brockers2025_dolphin_mixtral" and doc["data"]["conversations"] == 1195
    assert main(["fit", "dataset:nope", "--out", str(tmp_path / "x")]) == 2
    assert "dataset:nope: no such dataset" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_files_are_the_published_ones():
    """The bytes the package carries are the ones the data's README describes (hashes taken when
    they were copied in): an edit to a published table is caught here."""
    digests = {n: hashlib.sha256(datasets.path(n).read_bytes()).hexdigest()[:16] for n in datasets.names()}
    assert digests == EXPECTED


# sha256sum of the files as the data's publisher laid them out (first 16 hex digits).
EXPECTED = {"brockers2025_mixtral": "269c338cde11d4ed", "brockers2025_dolphin_mixtral": "af612b2c84853efa"}
