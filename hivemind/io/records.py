"""What a run records, labelled as an xarray Dataset, and where it goes while it runs:
memory, or a ``run.nc`` that grows on disk.

A long run records more than fits in memory (10^6 recorded steps of the quickstart are
13 GB), so ``simulate`` streams its records chunk by chunk into a NetCDF/HDF5 file whose
``step`` dimension is unlimited: every chunk is appended and flushed, and memory holds
one chunk at a time. The file grows under a hidden partial name and becomes ``run.nc``
by an atomic rename when the run is complete, so a reader never sees a half-written
result. A checkpoint records how many steps the partial file held when it was taken; a
resumed run cuts the file back to that many and appends from there.

Small runs (the tests, ``paths``, ``entropy``) keep their records in memory, which is
faster; both kinds answer the same calls.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from hivemind.engine.kernel import VARIABLES
from hivemind.engine.topology import GraphArrays, reachable_from_anchor
from hivemind.io.atomic import fsync_dir

if TYPE_CHECKING:
    from hivemind.scenario import Scenario

# Free space kept in hand beyond a chunk's own bytes: HDF5's metadata, the checkpoint.
SPACE_MARGIN = 4 * 2**20

# HDF5 chunks of about this size: large enough for fast appends, small enough to read a
# few steps of a long run without touching the rest.
CHUNK_BYTES = 4 * 2**20


NETCDF_ENGINE = "h5netcdf"
# A results file larger than this is opened backed by the file instead of loaded into memory.
IN_MEMORY_BYTES = 256 * 2**20

# What the engine records at every recorded step: dimensions and description.


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
            # -1, "" and NaN: no anchor (Friedkin-Johnsen with every agent stubborn).
            "anchor": anchors[0] if anchors else -1,
            "anchors": np.asarray(anchors, np.int64),
            "anchor_node": str(scenario.anchor.node) if anchors else "",
            "coupling": scenario.anchor.coupling if anchors else np.nan,
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


def record_bytes(n_seeds: int, n_agents: int, ambient_dim: int, itemsize: int, n_anchors: int = 1) -> int:
    """Bytes of one recorded step of every seed: states, distances, the scalar observables,
    and with several anchors the nearest one of each agent and their shares."""
    per_seed = (n_agents * ambient_dim + n_agents + 4) * itemsize
    if n_anchors > 1:
        per_seed += n_agents * 4 + n_anchors * itemsize
    return n_seeds * per_seed


def partial_path(final: Path) -> Path:
    """The hidden name a result grows under before it is renamed into place."""
    return final.parent / f".{final.name}.partial"


def is_out_of_space(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class MemoryRecords:
    """Records as a list of numpy chunks."""

    def __init__(self, scenario: Scenario, steps: np.ndarray, first: dict[str, np.ndarray]):
        self.scenario = scenario
        self.steps = steps  # every step that will be recorded
        self.parts = [first]
        self.count = first["loss"].shape[1]

    def append(self, rec: dict[str, np.ndarray]) -> None:
        self.parts.append(rec)
        self.count += rec["loss"].shape[1]

    def truncate(self, count: int) -> None:
        raise NotImplementedError("records in memory are not resumed")  # only files back a checkpoint

    def dataset(self, status: str | None, wall_time: float) -> xr.Dataset:
        joined = {k: np.concatenate([p[k] for p in self.parts], axis=1) for k in self.parts[0]}
        ds = build_dataset(self.scenario, self.steps[: self.count], joined, wall_time=wall_time)
        if status:
            ds.attrs["status"] = status
        return ds

    def close(self) -> None:
        self.parts = []


class DiscardRecords:
    """What a process other than 0 keeps of a multi-process run's records: their count (process 0 writes them)."""

    path = None

    def __init__(self, count: int):
        self.count = count

    def append(self, rec: dict[str, np.ndarray]) -> None:
        self.count += rec["loss"].shape[1]

    def close(self) -> None:
        pass


class FileRecords:
    """Records appended to a NetCDF file as they come.

    The file is first written by xarray with the initial observation, so its layout,
    coordinates and attributes are exactly what ``build_dataset`` gives; then it is
    reopened with h5py, and every chunk grows the datasets along the unlimited ``step``
    dimension and is flushed. (h5netcdf's own ``resize_dimension`` only resizes the
    datasets when the file is closed, so a killed run would lose everything.)
    """

    def __init__(self, path: Path, file=None, steps: np.ndarray | None = None):
        self.path = path
        self._file = file
        self.steps = steps

    @property
    def growing(self) -> list[str]:
        """The variables with a step dimension, as the file has them."""
        return [name for name in VARIABLES if name in self._file]

    @classmethod
    def create(cls, path: Path, scenario: Scenario, steps: np.ndarray, first: dict[str, np.ndarray]) -> FileRecords:
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = build_dataset(scenario, steps[:1], first)
        ds.attrs["status"] = "running"
        total = len(steps)
        encoding = {name: {"chunksizes": _chunks(ds[name], total)} for name in (*first, "step")}
        path.unlink(missing_ok=True)
        ds.to_netcdf(path, engine=NETCDF_ENGINE, unlimited_dims=("step",), encoding=encoding)
        return cls.open(path, steps)

    @classmethod
    def open(cls, path: Path, steps: np.ndarray) -> FileRecords:
        import h5py

        return cls(path, h5py.File(path, "r+"), steps)

    @property
    def count(self) -> int:
        return self._file["step"].shape[0]

    def _resize(self, count: int) -> None:
        self._file["step"].resize(count, axis=0)
        for name in self.growing:
            self._file[name].resize(count, axis=1)

    def append(self, rec: dict[str, np.ndarray]) -> None:
        # HDF5 does not survive a write that fails for lack of space (it can even crash at
        # exit), so a chunk that would not fit is refused before HDF5 sees it.
        need = sum(a.nbytes for a in rec.values()) + SPACE_MARGIN
        if shutil.disk_usage(self.path.parent).free < need:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        f, old = self._file, self.count
        new = old + rec["loss"].shape[1]
        self._resize(new)
        f["step"][old:new] = self.steps[old:new]
        for name, values in rec.items():
            f[name][:, old:new] = values
        f.flush()

    def truncate(self, count: int) -> None:
        if count > self.count:
            raise ValueError(f"{self.path} holds {self.count} recorded steps, the checkpoint needs {count}")
        self._resize(count)
        self._file.flush()

    def set_attrs(self, **attrs) -> None:
        for k, v in attrs.items():
            self._file.attrs[k] = v
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except (OSError, RuntimeError, ValueError):  # a full disk may refuse the last flush too
                pass
            self._file = None

    def finish(self, final: Path, wall_time: float) -> None:
        """Mark the file complete and rename it into place."""
        self.set_attrs(status="complete", wall_time_s=float(wall_time))
        self.close()
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.path, final)
        fsync_dir(final.parent)
        self.path = final

    def snapshot(self, final: Path, status: str, wall_time: float) -> bool:
        """Put what is on disk so far at ``final`` (with ``status``), keeping the partial file to resume.

        A hard link costs no space, which matters when the disk is full; where links are
        not supported the file is copied. Returns False if nothing could be written.
        """
        try:
            self.set_attrs(status=status, wall_time_s=float(wall_time))
        except (OSError, RuntimeError, ValueError):
            return False
        tmp = final.parent / f".{final.name}.link"
        tmp.unlink(missing_ok=True)
        try:
            os.link(self.path, tmp)
        except OSError:
            try:
                shutil.copyfile(self.path, tmp)
            except OSError:
                tmp.unlink(missing_ok=True)
                return False
        os.replace(tmp, final)
        return True


def _chunks(var: xr.DataArray, total_steps: int) -> tuple[int, ...]:
    """HDF5 chunk shape: whole records, as many steps as fit ``CHUNK_BYTES`` (and the run has)."""
    sizes = dict(zip(var.dims, var.shape, strict=True))
    per_step = int(np.prod([s for d, s in sizes.items() if d != "step"])) * var.dtype.itemsize
    steps = max(1, min(total_steps, CHUNK_BYTES // max(per_step, 1)))
    big = per_step > CHUNK_BYTES  # one seed's record per chunk, then
    return tuple(steps if d == "step" else 1 if d == "seed" and big else s for d, s in sizes.items())
