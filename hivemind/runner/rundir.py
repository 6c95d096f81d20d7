"""A run into a directory: what ``hivemind run`` does, for it and for Python callers.

The directory's writer lock, the resume-or-restart rule (``io.outdir.resume_mode``, the one
the command line uses), the free-space check, the checkpoints, the streamed ``run.nc`` and
``manifest.json``: ``run_in(scenario, out, resume=True)`` in a job script that may be
requeued does what ``hivemind run ... --resume`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from hivemind.engine import processes
from hivemind.io import checkpoint, outdir
from hivemind.io.results import load_run
from hivemind.runner.manifest import save_manifest
from hivemind.runner.simulate import SimulationDiverged, SimulationInterrupted, check_space, simulate
from hivemind.scenario import Scenario


class ManifestError(OSError):
    """The run is complete in ``run.nc``, but ``manifest.json`` cannot be written."""


def run_in(
    scenario: Scenario,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    started: Callable[[str], None] | None = None,
    then: Callable[[xr.Dataset], None] | None = None,
) -> xr.Dataset | None:
    """Run ``scenario`` into the directory ``out`` (``run.nc``, ``manifest.json``, checkpoints).

    Parameters
    ----------
    scenario : the scenario (``hivemind.load_scenario``).
    out : the run directory; a non-empty one needs ``resume`` or ``force``.
    resume : continue from the checkpoint in ``out``; with none, start from step 0, and with
        a finished run of this scenario there, return it without running.
    force : overwrite what ``out`` holds.
    progress : called as ``progress(done, total)`` steps after each chunk.
    started : called once ``out`` is read, with what will happen: "fresh", "resume",
        "restart" (``resume`` found nothing to resume) or "complete".
    then : called with the finished run while ``out`` is still locked (figures, reports).

    In a multi-process run (``hivemind.engine.processes``) every process calls ``run_in``
    alike: process 0 takes the lock, reads ``out`` and tells the others what it found; it
    alone writes, and the others get None.

    Raises
    ------
    hivemind.io.outdir.OutError, DirectoryBusy, OutOfSpace, ProcessesError
        before anything runs, with a one-line message.
    SimulationDiverged, SimulationInterrupted
        after writing ``manifest.json`` beside what was recorded (resumable when interrupted).
    RecordsWriteError, ManifestError, PeerLost
        with what was kept on disk (see ``simulate``).
    """
    out = Path(out)
    writer = processes.is_writer()
    with contextlib.ExitStack() as held:

        def decide() -> str:
            held.enter_context(outdir.locked(out))
            resumable = resume and checkpoint.exists(out / "checkpoint")
            mode = outdir.resume_mode(out, scenario.fingerprint, resume, force, resumable)
            if mode != "complete":
                check_space(out, scenario)
            return mode

        mode = processes.agree(decide, outdir.MODES, str(out))
        if started is not None:
            started(mode)
        if mode == "complete":
            return load_run(out) if writer else None
        try:
            ds = simulate(
                scenario, progress=progress, checkpoint_dir=out / "checkpoint", resume=mode == "resume", out_file=out / "run.nc"
            )
        except (SimulationDiverged, SimulationInterrupted) as e:
            if writer:
                save_manifest(out, scenario, e.dataset)
            raise
        if not writer:
            return None
        try:
            save_manifest(out, scenario, ds)
        except OSError as e:
            raise ManifestError(
                f"the run is complete in {out}/run.nc, but manifest.json cannot be written: {e.strerror or e}"
            ) from None
        if then is not None:
            then(ds)
    return ds
