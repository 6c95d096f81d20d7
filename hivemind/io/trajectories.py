"""Observed trajectories from disk, for ``hivemind fit``: a live run's directory or anyone's NetCDF file.

A NetCDF file holds ``embedding(round, agent, coord)`` (vectors; hivemind normalises
them), optionally ``anchor(coord)``, and the graph as ``edge_src(edge)``,
``edge_dst(edge)`` (agent indices; an edge means dst hears src; without edges everyone
hears everyone), and optionally each agent's group as a coordinate ``agent_group(agent)``
(strings: a model family, a persona), for the group-coupling model. A live run's directory
holds ``live.nc``, with one trajectory per decoding. Every problem is a ``DataError`` naming the file and the variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind.errors import InputError


class DataError(InputError, ValueError):
    """``str(e)`` is one line: the file, the variable, what is wrong."""


@dataclass(frozen=True)
class Trajectories:
    name: str  # "" for a plain file, the decoding for a live run
    y: np.ndarray  # (rounds + 1, agents, D), unit vectors
    anchor: np.ndarray | None  # (D,), unit
    src: np.ndarray  # (edges,)
    dst: np.ndarray
    group: tuple[str, ...] | None = None  # per agent, when the file names groups


def unit_rows(v: np.ndarray, path, var: str) -> np.ndarray:
    """``v``'s last axis scaled to unit length, in float64 (as ``load`` reads every embedding)."""
    v = np.asarray(v, np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm <= 1e-12):
        where = np.argwhere(norm[..., 0] <= 1e-12)[0].tolist()
        raise DataError(f"{path}: {var} has a zero vector at index {where}; directions are undefined")
    return v / norm


def _check(path, var: str, a: np.ndarray, dims: tuple[str, ...], got: tuple[str, ...]) -> np.ndarray:
    if got != dims:
        raise DataError(f"{path}: {var} must have dimensions {dims}, got {got}")
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(f"{path}: {var} holds NaN or infinite values")
    return a


def edges(path, ds, n: int, live: bool = False) -> tuple[np.ndarray, np.ndarray]:
    has = [v for v in ("edge_src", "edge_dst") if v in ds]
    if len(has) == 1:
        raise DataError(f"{path}: {has[0]} without {'edge_dst' if has[0] == 'edge_src' else 'edge_src'}")
    if not has and live:
        raise DataError(
            f"{path}: edge_src: no such variable (live.nc from before hivemind wrote the agents' graph; "
            "run hivemind live again with --resume to rewrite it)"
        )
    if not has:  # everyone hears everyone
        i, j = np.where(~np.eye(n, dtype=bool))
        return i.astype(np.int64), j.astype(np.int64)
    out = []
    for var in ("edge_src", "edge_dst"):
        a = ds[var]
        if a.dims != ("edge",):
            raise DataError(f"{path}: {var} must have the dimension ('edge',), got {a.dims}")
        v = np.asarray(a.values)
        if not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
                raise DataError(f"{path}: {var} must hold agent indices (integers)")
            v = v.astype(np.int64)
        bad = v[(v < 0) | (v >= n)]
        if bad.size:
            raise DataError(f"{path}: {var} names agent {int(bad[0])}, but there are {n} agents (0 to {n - 1})")
        out.append(v.astype(np.int64))
    return out[0], out[1]


def load(path: str | Path) -> list[Trajectories]:
    """The trajectories in ``path`` (a NetCDF file, or a live run's directory).

    Raises
    ------
    DataError
        One line naming the file and the variable.
    """
    import xarray as xr

    path = Path(path)
    live = path.is_dir()
    file = path / "live.nc" if live else path
    if not file.is_file():
        raise DataError(f"{file}: no such file" + (" (a live run's directory holds live.nc)" if live else ""))
    try:
        ds = xr.open_dataset(file)
    except (OSError, ValueError) as e:
        raise DataError(f"{file}: not a NetCDF file ({str(e).splitlines()[0][:120]})") from None
    with ds:
        if "embedding" not in ds:
            raise DataError(f"{file}: embedding: no such variable (expected embedding(round, agent, coord))")
        emb = ds["embedding"]
        anchor_var = "anchor_embedding" if live else "anchor"
        if live:
            names = [str(d) for d in ds["decoding"].values]
            arrays = [
                _check(file, "embedding", emb.sel(decoding=d).values, ("round", "agent", "coord"), emb.dims[1:]) for d in names
            ]
        else:
            names = [""]
            arrays = [_check(file, "embedding", emb.values, ("round", "agent", "coord"), emb.dims)]
        anchor = None
        if anchor_var in ds:
            anchor = _check(file, anchor_var, ds[anchor_var].values, ("coord",), ds[anchor_var].dims)
            if anchor.shape[0] != arrays[0].shape[-1]:
                raise DataError(f"{file}: {anchor_var} has {anchor.shape[0]} coordinates, embedding has {arrays[0].shape[-1]}")
            anchor = unit_rows(anchor[None], file, anchor_var)[0]
        n = arrays[0].shape[1]
        src, dst = edges(file, ds, n, live)
        group = None
        if "agent_group" in ds.variables:
            g = ds["agent_group"]
            if g.dims != ("agent",):
                raise DataError(f"{file}: agent_group must have the dimension ('agent',), got {g.dims}")
            group = tuple(str(v) for v in g.values)
    out = []
    for name, y in zip(names, arrays, strict=True):
        if y.shape[0] < 3:
            raise DataError(f"{file}: embedding has {y.shape[0]} round(s); a fit needs 3 or more (2 transitions)")
        if n < 2:
            raise DataError(f"{file}: embedding has {n} agent(s); a fit needs 2 or more")
        out.append(Trajectories(name, unit_rows(y, file, "embedding"), anchor, src, dst, group))
    return out


def write(path: str | Path, y: np.ndarray, anchor: np.ndarray | None = None, src=None, dst=None, group=None) -> Path:
    """A NetCDF file that ``load`` (and ``hivemind fit``) reads: the format, by example."""
    import xarray as xr

    data = {"embedding": (("round", "agent", "coord"), np.asarray(y, np.float64))}
    if group is not None:
        data["agent_group"] = (("agent",), np.asarray([str(g) for g in group]))
    if anchor is not None:
        data["anchor"] = (("coord",), np.asarray(anchor, np.float64))
    if src is not None:
        data["edge_src"] = (("edge",), np.asarray(src, np.int64))
        data["edge_dst"] = (("edge",), np.asarray(dst, np.int64))
    path = Path(path)
    xr.Dataset(data).to_netcdf(path, engine="h5netcdf")
    return path
