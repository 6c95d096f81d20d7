"""Results as an xarray Dataset, and the run directory: ``run.nc`` + ``manifest.json``.

Files are written atomically (temporary file, fsync, rename), so a run directory
never holds a half-written result.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from hivemind.errors import InputError
from hivemind.io.atomic import atomic_write
from hivemind.io.records import NETCDF_ENGINE, anchor_indices, mobile_mask, open_result

if TYPE_CHECKING:
    pass

# An agent counts as having reached the anchor when it is this close (geodesic distance).
REACHED_TOL = 1e-3


class RunDirError(InputError, ValueError):
    """A directory that is not a hivemind run."""


def summarize(ds: xr.Dataset) -> dict:
    """The final state in a few numbers (what ``manifest.json`` and the CLI report)."""
    final = ds.distance_to_anchor.isel(step=-1)
    mobile = xr.DataArray(mobile_mask(ds), dims="agent")
    reach = (ds.reachable == 1) & mobile
    reached = (final < REACHED_TOL) & reach
    last = ds.isel(step=-1)
    split = {}
    if "clusters" in ds:
        split = {
            "final_clusters": float(last.clusters.mean()),
            "final_largest_cluster_share": float(last.largest_cluster_share.mean()),
            "final_dispersion": float(last.dispersion.mean()),
        }
    if "anchor_share" in ds:
        split["final_anchor_share"] = [float(v) for v in last.anchor_share.mean("seed").values]
    anchored = anchor_indices(ds).size > 0  # a Friedkin-Johnsen run without an anchor has no distance to one
    return split | {
        "final_step": int(ds.step[-1]),
        "final_loss_mean": float(ds.loss.isel(step=-1).mean()),
        "final_distance_mean": float(final.where(mobile).mean()) if anchored else None,
        "final_distance_max": float(final.where(mobile).max()) if anchored else None,
        "initial_distance_mean": float(ds.distance_to_anchor.isel(step=0).where(mobile).mean()) if anchored else None,
        "agents": int(mobile.sum()),
        "agents_reachable": int(reach.sum()),
        "agents_reached": float(reached.sum("agent").mean()),
        "reached_tol": REACHED_TOL,
    }


def git_description() -> str:
    """``git describe`` of the checkout this package runs from, else of the one its kernel was
    built from (an installed wheel), else "unknown"."""
    import subprocess

    from hivemind.engine import fused

    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    build, _ = fused.find_build()
    return build.git if build is not None else "unknown"


def versions() -> dict:
    """What computed a result: hivemind (its git description and its kernel's build) and the libraries under it."""
    import jax
    import networkx
    import optax

    from hivemind._version import __version__
    from hivemind.engine import fused

    return {
        "hivemind": __version__,
        "git": git_description(),
        "kernel_build": fused.describe(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
        "xarray": xr.__version__,
        "networkx": networkx.__version__,
        "python": platform.python_version(),
    }


def save_dataset(ds: xr.Dataset, path: str | Path) -> None:
    atomic_write(Path(path), lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))


def save_json(data: dict, path: str | Path) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=_json_default)
            f.write("\n")

    atomic_write(Path(path), write)


def save_csv(frame, path: str | Path) -> None:
    """A pandas DataFrame as CSV, written atomically."""
    atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def finite_or_none(x) -> float | None:
    """``x`` as a float, or None (JSON null) where it is NaN or infinite: JSON has no such numbers."""
    x = float(x)
    return x if np.isfinite(x) else None


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray, tuple)):
        return list(obj)
    return str(obj)


def load_run(path: str | Path) -> xr.Dataset:
    """The Dataset of a run directory (or of a ``run.nc`` file); see ``open_result`` for large ones."""
    path = Path(path)
    nc = path / "run.nc" if path.is_dir() else path
    if not nc.is_file():
        raise RunDirError(f"{path}: not a hivemind run (no run.nc)")
    try:
        return open_result(nc)
    except (OSError, ValueError) as e:
        raise RunDirError(f"{nc}: cannot be read as a hivemind run: {e}") from None
