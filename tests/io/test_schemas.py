"""The output documents' contracts: real runs' manifest.json, sweep.json and summary.json against
their JSON Schemas, the typed readers against the files' own values, and older versions refused."""

from __future__ import annotations

import json

import jsonschema
import pytest
from referencing import Registry, Resource

from hivemind.cli import main
from hivemind.io import documents as D
from tests.helpers import scenario_text


def validator(kind: str) -> jsonschema.Draft202012Validator:
    schemas = {k: D.schema(k) for k in ("manifest", "sweep", "summary")}
    # The sweep's schema refers to the manifest's by a relative reference, resolved against its $id.
    registry = Registry().with_resources((v["$id"], Resource.from_contents(v)) for v in schemas.values())
    jsonschema.Draft202012Validator.check_schema(schemas[kind])
    return jsonschema.Draft202012Validator(schemas[kind], registry=registry)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    path = tmp / "s.toml"
    path.write_text(scenario_text(graph={"kind": "cycle", "n": 10}, run={"seeds": [0, 1]}, dynamics={"steps": 200}))
    assert main(["run", str(path), "--out", str(tmp / "out")]) == 0
    return tmp / "out"


def test_a_runs_manifest_meets_its_schema_and_reads_as_typed_records(run_dir):
    doc = json.loads((run_dir / "manifest.json").read_text())
    validator("manifest").validate(doc)
    m = D.read_manifest(run_dir / "manifest.json")
    assert m.seeds == (0, 1) and m.kernel == doc["kernel"] and m.versions == doc["versions"]
    s = doc["summary"]
    assert (m.summary.final_step, m.summary.agents, m.summary.final_distance_mean) == (
        s["final_step"], s["agents"], s["final_distance_mean"]
    )  # fmt: skip
    assert m.summary.formed == (s["agents_reached"] >= s["agents_reachable"] > 0)
    assert m.theory.predicted_rate == doc["theory"]["predicted"]["rate"]


def test_a_sweeps_json_meets_its_schema(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(graph={"kind": "cycle", "n": 8}, dynamics={"steps": 50}))
    grid = ["--grid", "dynamics.step_size=0.05,0.1"]
    assert main(["sweep", str(path), *grid, "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "sweep.json").read_text())
    validator("sweep").validate(doc)
    sweep = D.read_sweep(tmp_path / "out" / "sweep.json")
    assert sweep.grid == {"dynamics.step_size": [0.05, 0.1]} and sweep.tolerance == doc["tolerance"]


def test_a_live_runs_summary_meets_its_schema_and_its_fits_meet_fits(tmp_path):
    from hivemind.cli.reference import TINY_LIVE
    from hivemind.live.backends import FakeBackend
    from hivemind.live.config import parse_scenario as parse_live
    from hivemind.live.run import run_live

    run_live(parse_live(TINY_LIVE, file="tiny.toml"), tmp_path, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    doc = json.loads((tmp_path / "summary.json").read_text())
    validator("summary").validate(doc)
    fit_schema = json.loads((D.SCHEMAS.parents[1] / "theory" / "fitting" / "fit.schema.json").read_text())
    for one in doc["fit"].values():
        jsonschema.validate(one, fit_schema)
    summary = D.read_summary(tmp_path / "summary.json")
    assert [r.decoding for r in summary.table] == [r["decoding"] for r in doc["table"]]
    assert summary.table[0].final_jaccard_to_anchor == doc["table"][0].get("final_jaccard_to_anchor")
    assert summary.agents == doc["agents"] and summary.fits == doc["fit"]


def test_the_fit_reader_knows_the_version_the_fit_writes():
    from hivemind.theory.fitting.compare import SCHEMA_VERSION

    assert D.FIT_VERSION == SCHEMA_VERSION
    assert json.loads((D.SCHEMAS.parents[1] / "theory/fitting/fit.schema.json").read_text())  # present in the package


@pytest.mark.parametrize(
    "kind, reader, version", [("manifest", D.read_manifest, 1), ("sweep", D.read_sweep, 1), ("summary", D.read_summary, 1)]
)
def test_a_document_of_another_version_is_one_line(tmp_path, kind, reader, version):
    assert D.schema(kind)["properties"]["schema_version"]["const"] == version
    for found, when in ((None, "an older"), (version - 1, "an older"), (version + 1, "another")):
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps({} if found is None else {"schema_version": found}))
        with pytest.raises(D.DocumentError) as e:
            reader(path)
        shown = 0 if found is None else found
        assert str(e.value) == (
            f"{path}: written by {when} hivemind (schema_version {shown}; this one reads {version}): "
            "rerun the command that made it, or read it with the version that wrote it"
        )


def test_report_of_a_run_folder_from_an_older_hivemind_is_one_line(run_dir, tmp_path, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    doc = json.loads((old / "manifest.json").read_text())
    del doc["schema_version"]
    (old / "manifest.json").write_text(json.dumps(doc))
    assert main(["report", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{old / 'manifest.json'}: written by an older hivemind (schema_version 0") and err.count("\n") == 1
