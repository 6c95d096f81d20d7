"""A run into a directory, as ``hivemind run`` does it in one process, for Python callers.

The directory's writer lock, the resume-or-restart rule (``io.outdir.resume_mode``, the one
the command line uses), the free-space check, the checkpoints, the streamed ``run.nc`` and
``manifest.json``: ``run_in(scenario, out, resume=True)`` in a job script that may be
requeued does what ``hivemind run ... --resume`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import xarray as xr

from hivemind.io import checkpoint, outdir
from hivemind.io.results import load_run
from hivemind.runner.manifest import save_manifest
from hivemind.runner.simulate import SimulationDiverged, SimulationInterrupted, check_space, simulate
from hivemind.scenario import Scenario


def run_in(
    scenario: Scenario,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    """Run ``scenario`` into the directory ``out`` (``run.nc``, ``manifest.json``, checkpoints).

    Parameters
    ----------
    scenario : the scenario (``hivemind.load_scenario``).
    out : the run directory; a non-empty one needs ``resume`` or ``force``.
    resume : continue from the checkpoint in ``out``; with none, start from step 0, and with
        a finished run of this scenario there, return it without running.
    force : overwrite what ``out`` holds.
    progress : called as ``progress(done, total)`` steps after each chunk.

    Raises
    ------
    hivemind.io.outdir.OutError, DirectoryBusy, OutOfSpace
        before anything runs, with a one-line message.
    SimulationDiverged, SimulationInterrupted
        after writing ``manifest.json`` beside what was recorded (resumable when interrupted).
    """
    out = Path(out)
    with outdir.locked(out):
        resumable = resume and checkpoint.exists(out / "checkpoint")
        mode = outdir.resume_mode(out, scenario.fingerprint, resume, force, resumable)
        if mode == "complete":
            return load_run(out)
        check_space(out, scenario)
        try:
            ds = simulate(
                scenario, progress=progress, checkpoint_dir=out / "checkpoint", resume=mode == "resume", out_file=out / "run.nc"
            )
        except (SimulationDiverged, SimulationInterrupted) as e:
            save_manifest(out, scenario, e.dataset)
            raise
        save_manifest(out, scenario, ds)
    return ds
