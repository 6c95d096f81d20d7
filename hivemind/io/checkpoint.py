"""Checkpoints of a running simulation, so that a killed run loses at most one interval.

A checkpoint directory holds ``carry.npz``: the engine's carry after chunk k (states,
the rule's state, the PRNG keys), the step reached, how many recorded steps the records
file held then, and the scenario's fingerprint. The records themselves grow in one
NetCDF file (``hivemind.io.records``); ``carry.npz`` is written atomically and only after
the records it counts were flushed, so whatever a kill leaves on disk is consistent.
Resuming cuts the records file back to that count, restores the carry bit for bit and
replays the same chunk plan, so a resumed run ends with the same arrays as one that was
never interrupted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hivemind.engine.processes import is_key, is_writer, to_host
from hivemind.errors import InputError
from hivemind.io.atomic import atomic_write

CARRY = "carry.npz"


class CheckpointError(InputError, ValueError):
    """A checkpoint that cannot be resumed: another scenario's, or damaged."""


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def _real(leaf_shape: tuple, padded: tuple[int, int], layout: tuple[int, int]) -> tuple[slice, ...]:
    """The index of a carry leaf's real runs (and agents): padding for the devices left out.

    Every leaf has the seeds first; per-agent leaves (the states, a rule's per-agent state)
    have the agents second, as many as the padded states have.
    """
    seeds, agents = layout
    index = [slice(0, seeds)]
    if len(leaf_shape) >= 2 and leaf_shape[:2] == padded:
        index.append(slice(0, agents))
    return tuple(index)


def save_carry(
    directory: Path,
    fingerprint: str,
    chunk: int,
    done: int,
    n_records: int,
    carry: Any,
    layout: tuple[int, int] | None = None,
    execution: dict | None = None,
) -> None:
    """The carry after chunk ``chunk``, at step ``done``, with ``n_records`` steps on disk; keys as raw data.

    ``layout`` (real seeds, real agents) drops what was padded for the devices, so that a
    run may resume on another number of devices or processes, or another ``run.shard``.
    ``execution`` (how the run was spread) is kept so that a resume can say what changed.
    In a multi-process run every process calls it (the carry is gathered from all of
    them) and process 0 alone writes.
    """
    leaves = jax.tree_util.tree_leaves(carry)
    padded = tuple(leaves[0].shape[:2])  # the states come first
    arrays = {}
    for i, x in enumerate(leaves):
        a = to_host(jax.random.key_data(x) if is_key(x) else x)
        arrays[f"leaf{i}"] = a if layout is None else a[_real(x.shape, padded, layout)]
    if not is_writer():
        return
    arrays["meta_chunk"] = np.asarray(chunk)
    arrays["meta_done"] = np.asarray(done)
    arrays["meta_records"] = np.asarray(n_records)
    arrays["meta_fingerprint"] = np.asarray(fingerprint)
    arrays["meta_execution"] = np.asarray(json.dumps(execution or {}, sort_keys=True))
    _save_npz(directory / CARRY, arrays)


def exists(directory: Path) -> bool:
    return (Path(directory) / CARRY).is_file()


def _meta(directory: Path, name: str) -> np.ndarray | None:
    """``meta_<name>`` of the checkpoint in ``directory``, or None where there is none readable."""
    try:
        with np.load(Path(directory) / CARRY) as f:
            return f[f"meta_{name}"]
    except (OSError, ValueError, KeyError, EOFError):
        return None


def saved_step(directory: Path) -> int | None:
    """The step the checkpoint in ``directory`` reached, or None where there is none readable."""
    done = _meta(directory, "done")
    return None if done is None else int(done)


def saved_execution(directory: Path) -> dict:
    """How the checkpointed run was spread over devices ({} where it did not say)."""
    execution = _meta(directory, "execution")
    return {} if execution is None else json.loads(str(execution))


def load(directory: Path, fingerprint: str, template: Any, layout: tuple[int, int] | None = None) -> tuple[Any, int, int, int]:
    """The saved carry (shaped like ``template``), the number of records it counts, its chunk index and step.

    With ``layout`` (real seeds, real agents) the saved runs and agents go into the real
    part of ``template``, a fresh carry laid out for this run's devices; its padding keeps
    the fresh values, which padded runs and agents never pass on to real ones.
    """
    directory = Path(directory)
    try:
        with np.load(directory / CARRY) as f:
            saved = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{directory / CARRY}: cannot be read ({e})") from None
    if str(saved.get("meta_fingerprint")) != fingerprint:
        raise CheckpointError(f"{directory}: the checkpoint is of a different scenario (or different --set values)")
    leaves, treedef = jax.tree_util.tree_flatten(template)
    padded = tuple(leaves[0].shape[:2])
    restored = []
    for i, leaf in enumerate(leaves):
        data = saved.get(f"leaf{i}")
        if data is None:
            raise CheckpointError(f"{directory / CARRY}: missing part {i} of the engine state")
        want = jax.random.key_data(leaf) if is_key(leaf) else leaf
        if layout is not None and data.shape != want.shape and data.dtype == want.dtype:
            # Saved on another layout: its real runs and agents go into this run's fresh carry.
            # (Every process decides alike, so every process joins to_host's gather.)
            real = _real(leaf.shape, padded, layout)
            fresh = np.array(to_host(want))
            if data.ndim == fresh.ndim and data[real].shape == fresh[real].shape:
                fresh[real] = data[real]
                data = fresh
        if data.shape != want.shape or data.dtype != want.dtype:
            raise CheckpointError(f"{directory / CARRY}: part {i} has shape {data.shape}, expected {want.shape}")
        if is_key(leaf):
            restored.append(jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf)))
        else:
            restored.append(jax.numpy.asarray(data))
    if "meta_records" not in saved:
        raise CheckpointError(f"{directory / CARRY}: written by an older hivemind; run again with --force")
    chunk, done, n_records = int(saved["meta_chunk"]), int(saved["meta_done"]), int(saved["meta_records"])
    return jax.tree_util.tree_unflatten(treedef, restored), n_records, chunk, done


def open_records(path: Path, steps: np.ndarray, n_records: int):
    """The records file a checkpoint points at, cut back to the ``n_records`` steps it counted."""
    from hivemind.io.records import FileRecords

    try:
        rec = FileRecords.open(path, steps)
        rec.truncate(n_records)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: the records of the checkpoint cannot be read ({e})") from None
    return rec


def clear(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
