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
