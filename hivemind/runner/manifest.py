"""A run directory's ``manifest.json``: the resolved scenario, its identity, the software and
the machine, the summary and the theory beside it; and ``save_run``, which writes it with ``run.nc``."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from hivemind.io.documents import MANIFEST_VERSION
from hivemind.io.results import save_dataset, save_json, summarize, versions
from hivemind.scenario import Scenario


def manifest(scenario: Scenario, ds: xr.Dataset) -> dict:
    import jax

    from hivemind.runner.simulate import kernel_choice

    return {
        "schema_version": MANIFEST_VERSION,
        "scenario": scenario.to_dict(),
        "scenario_file": scenario.source,
        "scenario_sha256": scenario.sha256,
        "scenario_fingerprint": scenario.fingerprint,
        "scenario_text": scenario.text,
        "seeds": list(scenario.run.seeds),
        "precision": scenario.run.precision,
        "devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        # Which pair kernel computed it (run.kernel says what was asked): the two agree to rounding.
        "kernel": kernel_choice(scenario)[1].removeprefix("kernel: "),
        "versions": versions(),
        "wall_time_s": ds.attrs.get("wall_time_s"),
        "status": ds.attrs.get("status", "complete"),
        "summary": summarize(ds) if ds.sizes["step"] else {},
        "theory": _theory(ds),
        "design": design_check(scenario, ds),
    }


def design_check(scenario: Scenario, ds: xr.Dataset) -> dict | None:
    """The objective of the scenario's [design] measured on this run, beside the value the design found."""
    if scenario.design is None or not ds.sizes["step"]:
        return None
    from hivemind.theory.opinions import measured

    value, how = measured(scenario.design.objective, scenario, ds, scenario.design.neutral)
    expected = scenario.design.value
    diff = None if value is None or expected is None else abs(value - expected) / max(abs(expected), 1e-12)
    return {
        "objective": scenario.design.objective,
        "measured": value,
        "designed": expected,
        "relative_difference": diff,
        "how": how,
    }


def _theory(ds: xr.Dataset) -> dict | None:
    from hivemind.theory.linear import rate_report

    return rate_report(ds) if ds.sizes["step"] > 1 else None


def save_run(out: str | Path, scenario: Scenario, ds: xr.Dataset) -> dict:
    """Write ``run.nc`` (unless ``ds`` is already backed by it) and ``manifest.json`` into ``out``; returns the manifest."""
    out = Path(out)
    source = ds.encoding.get("source")
    if not (source and (out / "run.nc").exists() and os.path.samefile(source, out / "run.nc")):
        save_dataset(ds, out / "run.nc")
    return save_manifest(out, scenario, ds)


def save_manifest(out: str | Path, scenario: Scenario, ds: xr.Dataset) -> dict:
    """Write ``manifest.json`` for the run ``ds`` into ``out``; returns it."""
    meta = manifest(scenario, ds)
    save_json(meta, Path(out) / "manifest.json")
    return meta
