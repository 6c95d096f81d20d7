"""Spreading a run over devices with ``jax.sharding``.

``run.shard`` picks the axis: ``"seeds"`` gives each device whole runs of an ensemble
(no communication between devices); ``"agents"`` splits the agents and their incoming
edges into one block per device, and XLA's partitioner inserts the exchange of
neighbour states that the gather needs. Either way the program is the one-device
program, so the results are the same (``tests/engine/test_sharding.py``).

Axes are padded to a multiple of the device count and trimmed afterwards: extra seeds
repeat the last one, extra agents are immobile copies of the anchor with no edges, and
extra edges have weight 0 from a node to itself, so none of them changes a result.

Many processes (hosts) work the same way (``hivemind.engine.processes``): once
connected, ``jax.devices()`` lists the devices of all of them and the mesh spans them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hivemind.engine.kernel import VARIABLES
from hivemind.engine.processes import place
from hivemind.engine.topology import Topology

AXIS = "devices"
SHARD_KINDS = ("none", "seeds", "agents")


class Layout(NamedTuple):
    """How the engine's arrays were padded, so results can be trimmed back."""

    seeds: int
    agents: int


def mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def _pad_rows(a: jax.Array, pad: int, axis: int, fill: jax.Array | None = None) -> jax.Array:
    if pad == 0:
        return a
    if fill is None:  # repeat the last entry
        fill = jax.lax.slice_in_dim(a, a.shape[axis] - 1, a.shape[axis], axis=axis)
    reps = [1] * a.ndim
    reps[axis] = pad
    return jnp.concatenate([a, jnp.tile(fill, reps)], axis=axis)


def _pad_edges(topology: Topology, n_dev: int, receiver: int) -> Topology:
    pad = -topology.n_messages % n_dev
    if pad == 0:
        return topology
    ends = jnp.full((pad,), receiver, topology.receivers.dtype)  # the highest index: stays sorted
    zeros = jnp.zeros((pad,), topology.weights.dtype)
    return topology._replace(
        senders=jnp.concatenate([topology.senders, ends]),
        receivers=jnp.concatenate([topology.receivers, ends]),
        weights=jnp.concatenate([topology.weights, zeros]),
        pair=jnp.concatenate([topology.pair, jnp.zeros((pad,), topology.pair.dtype)]),
        loss_weights=jnp.concatenate([topology.loss_weights, zeros]),
    )


def shard(kind: str, states: jax.Array, keys: jax.Array, topology: Topology) -> tuple[jax.Array, jax.Array, Topology, Layout]:
    """Place ``states`` (S, N, D), ``keys`` (S,) and ``topology`` on the devices for ``run.shard = kind``."""
    layout = Layout(states.shape[0], states.shape[1])
    n_dev = jax.device_count()
    if kind == "none" or n_dev == 1:
        return states, keys, topology, layout
    m = mesh()
    split, whole = NamedSharding(m, PartitionSpec(AXIS)), NamedSharding(m, PartitionSpec())
    if kind == "seeds":
        pad = -layout.seeds % n_dev
        states, keys = _pad_rows(states, pad, 0), _pad_rows(keys, pad, 0)
        topology = Topology(*(place(a, whole) for a in topology))
        return place(states, split), place(keys, split), topology, layout
    if kind != "agents":
        raise ValueError(f"run.shard must be one of {SHARD_KINDS}, got {kind!r}")
    pad = -layout.agents % n_dev
    anchor_rows = states[:, topology.anchors[0]][:, None]
    states = _pad_rows(states, pad, 1, anchor_rows)
    zero = jnp.zeros((1,), topology.inv_inertia.dtype)
    topology = topology._replace(
        inv_inertia=_pad_rows(topology.inv_inertia, pad, 0, zero),
        stubbornness=_pad_rows(topology.stubbornness, pad, 0, zero),
        node_mask=_pad_rows(topology.node_mask, pad, 0, zero),
    )
    topology = _pad_edges(topology, n_dev, states.shape[1] - 1)
    by_agent = NamedSharding(m, PartitionSpec(None, AXIS))
    replicated = ("anchors", "sample", "half")  # indices every device needs whole (no pair kernel when agents split)
    topology = Topology(**{k: place(a, whole if k in replicated else split) for k, a in topology._asdict().items()})
    return place(states, by_agent), place(keys, whole), topology, layout


def trim(records: dict, layout: Layout) -> dict:
    """Drop padded seeds (axis 0) and agents (the ``agent`` axis) from records with seeds first."""
    s, n = layout
    out = {}
    for name, values in records.items():
        dims = VARIABLES[name][0]
        index = [slice(None)] * values.ndim
        index[0] = slice(0, s)
        if "agent" in dims:
            index[dims.index("agent")] = slice(0, n)
        out[name] = values[tuple(index)]
    return out
