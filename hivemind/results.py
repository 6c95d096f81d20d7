"""Results as an xarray Dataset, and the run directory: ``run.nc`` + ``manifest.json``.

Files are written atomically (temporary file, fsync, rename), so a run directory
never holds a half-written result.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from hivemind.topology import GraphArrays, reachable_from_anchor

if TYPE_CHECKING:
    from hivemind.scenario import Scenario

NETCDF_ENGINE = "h5netcdf"
# A results file larger than this is opened backed by the file instead of loaded into memory.
IN_MEMORY_BYTES = 256 * 2**20

# An agent counts as having reached the anchor when it is this close (geodesic distance).
REACHED_TOL = 1e-3


class RunDirError(ValueError):
    """A directory that is not a hivemind run."""


# What the engine records at every recorded step: dimensions and description.
VARIABLES = {
    "state": (("seed", "step", "agent", "coord"), "agent state (ambient coordinates)"),
    "loss": (("seed", "step"), "global loss 1/2 sum w kappa d^2"),
    "distance_to_anchor": (("seed", "step", "agent"), "geodesic distance to the nearest anchor"),
    "dispersion": (("seed", "step"), "mean pairwise geodesic distance over a fixed sample of agents"),
    "clusters": (("seed", "step"), "connected components once edges longer than cluster_tol are dropped"),
    "largest_cluster_share": (("seed", "step"), "share of the nodes in the largest cluster"),
    "nearest_anchor": (("seed", "step", "agent"), "index (into the anchor dimension) of the nearest anchor"),
    "anchor_share": (("seed", "step", "anchor"), "share of the mobile agents nearest to each anchor"),
}


def build_dataset(scenario: Scenario, steps, records: dict, wall_time: float = float("nan")) -> xr.Dataset:
    """Label the engine's records (``VARIABLES``): dimensions (seed, step, agent, coord), the graph on (edge)."""
    arrays = scenario.arrays
    anchors = list(scenario.anchor_indices)
    _, _, n, d = records["state"].shape
    data = {}
    for name, values in records.items():
        dims, long_name = VARIABLES[name]
        attrs = {"long_name": long_name}
        if name in ("distance_to_anchor", "dispersion"):
            attrs["units"] = "radians" if scenario.manifold.kind == "sphere" else "geodesic length"
        data[name] = (dims, values, attrs)
    is_anchor = np.zeros(n, dtype=np.int8)
    is_anchor[anchors] = 1
    inertia = arrays.inertia.copy()
    inertia[anchors] = np.inf
    ds = xr.Dataset(
        data_vars={
            **data,
            "edge_src": (("edge",), arrays.src.astype(np.int64)),
            "edge_dst": (("edge",), arrays.dst.astype(np.int64)),
            "edge_weight": (("edge",), arrays.weight.astype(np.float64)),
            "inertia": (("agent",), inertia),
            "stubbornness": (("agent",), scenario.stubbornness, {"long_name": "theta: weight of the agent's own initial state"}),
            "is_anchor": (("agent",), is_anchor, {"long_name": "1 for anchors (infinite inertia)"}),
            "anchor_agent": (("anchor",), np.asarray(anchors, np.int64), {"long_name": "agent index of each anchor"}),
            "anchor_coupling": (("anchor",), np.asarray([a.coupling for a in scenario.anchors]), {"long_name": "kappa"}),
            "reachable": (
                ("agent",),
                reachable_from_anchor(arrays, anchors).astype(np.int8),
                {"long_name": "1 if the agent can hear an anchor through the graph"},
            ),
        },
        coords={
            "seed": ("seed", np.asarray(scenario.run.seeds, np.int64)),
            "step": ("step", np.asarray(steps, np.int64)),
            "agent": ("agent", np.arange(n, dtype=np.int64)),
            "node": ("agent", np.asarray([str(label) for label in arrays.labels], dtype=object)),
            "coord": ("coord", np.arange(d, dtype=np.int64)),
            "anchor": ("anchor", np.arange(len(anchors), dtype=np.int64)),
        },
        attrs={
            "scenario": scenario.name,
            "manifold": scenario.manifold.kind,
            "dim": scenario.manifold.dim,
            "anchor": anchors[0],
            "anchors": np.asarray(anchors, np.int64),
            "anchor_node": str(scenario.anchor.node),
            "coupling": scenario.anchor.coupling,
            "directed": int(arrays.directed),
            "rule": scenario.dynamics.rule,
            "step_size": scenario.dynamics.step_size,
            "noise": scenario.dynamics.noise,
            "noise_schedule": scenario.dynamics.noise_schedule,
            "confidence": np.inf if scenario.dynamics.confidence is None else scenario.dynamics.confidence,
            "cluster_tol": scenario.record.cluster_tol,
            "inertia_kind": scenario.agents.inertia if isinstance(scenario.agents.inertia, str) else "given",
            "precision": scenario.run.precision,
            "wall_time_s": float(wall_time),
            "status": "complete",
        },
    )
    return ds


def anchor_indices(ds: xr.Dataset) -> np.ndarray:
    """The agent indices of a run's anchors (runs written before several anchors existed have one)."""
    if "anchor_agent" in ds:
        return np.asarray(ds.anchor_agent.values, dtype=np.int64)
    return np.asarray([int(ds.attrs["anchor"])])


def mobile_mask(ds: xr.Dataset) -> np.ndarray:
    """True for every agent that is not an anchor."""
    mask = np.ones(ds.sizes["agent"], dtype=bool)
    mask[anchor_indices(ds)] = False
    return mask


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
    return split | {
        "final_step": int(ds.step[-1]),
        "final_loss_mean": float(ds.loss.isel(step=-1).mean()),
        "final_distance_mean": float(final.where(mobile).mean()),
        "final_distance_max": float(final.where(mobile).max()),
        "initial_distance_mean": float(ds.distance_to_anchor.isel(step=0).where(mobile).mean()),
        "agents": int(mobile.sum()),
        "agents_reachable": int(reach.sum()),
        "agents_reached": float(reached.sum("agent").mean()),
        "reached_tol": REACHED_TOL,
    }


def versions() -> dict:
    import jax
    import networkx
    import optax

    from hivemind import __version__

    return {
        "hivemind": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
        "xarray": xr.__version__,
        "networkx": networkx.__version__,
        "python": platform.python_version(),
    }


def manifest(scenario: Scenario, ds: xr.Dataset) -> dict:
    import jax

    return {
        "scenario": scenario.to_dict(),
        "scenario_file": scenario.source,
        "scenario_sha256": scenario.sha256,
        "scenario_fingerprint": scenario.fingerprint,
        "scenario_text": scenario.text,
        "seeds": list(scenario.run.seeds),
        "precision": scenario.run.precision,
        "devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        "versions": versions(),
        "wall_time_s": ds.attrs.get("wall_time_s"),
        "status": ds.attrs.get("status", "complete"),
        "summary": summarize(ds) if ds.sizes["step"] else {},
        "theory": _theory(ds),
    }


def _theory(ds: xr.Dataset) -> dict | None:
    from hivemind.theory import rate_report

    return rate_report(ds) if ds.sizes["step"] > 1 else None


def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would surprise users sharing results
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def open_result(path: str | Path) -> xr.Dataset:
    """A results file: loaded into memory up to ``IN_MEMORY_BYTES``, else backed by the file.

    A file-backed Dataset reads what is indexed (``ds.state.isel(step=-1)`` reads one
    step), so a run of any length can be opened.
    """
    path = Path(path)
    ds = xr.open_dataset(path, engine=NETCDF_ENGINE)
    if path.stat().st_size <= IN_MEMORY_BYTES:
        with ds:
            return ds.load()
    return ds


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


def graph_arrays_of(ds: xr.Dataset) -> GraphArrays:
    """The graph stored in a results Dataset, as the engine indexed it."""
    inertia = ds.inertia.values.astype(np.float64).copy()
    inertia[anchor_indices(ds)] = 1.0  # stored as inf; only 1/m = 0 matters to the engine
    return GraphArrays(
        labels=[str(v) for v in ds.node.values],
        src=ds.edge_src.values.astype(np.int64),
        dst=ds.edge_dst.values.astype(np.int64),
        weight=ds.edge_weight.values.astype(np.float64),
        directed=bool(ds.attrs.get("directed", 0)),
        inertia=inertia,
    )
