"""Many discussions as one array: the data every fit, score and forecast reads.

A panel holds the opinions of every agent of every discussion, ``y`` (T, N, D): rounds on the
first axis (each discussion's first round at 0), all agents of all discussions on the second,
the opinion's coordinates on the last. Agents of different discussions never hear each other:
the edges (``src`` -> ``dst``: dst hears src) stay within a discussion, each with a weight (1
by default; negative for a tie that pushes away) and a kind (friend, foe, follows: one coupling
per kind in the ``edges[kind]`` models). Discussions may differ in size and length: ``valid``
(T, N) marks what was observed, and the padding repeats an agent's nearest observed value, so
that the geometry stays finite where the weights are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class Arrays(NamedTuple):
    """The panel's arrays as a pytree: what compiled functions take."""

    y: np.ndarray  # (T, N, D)
    valid: np.ndarray  # (T, N) bool
    first: np.ndarray  # (N, D): each agent's first observed value (the stubbornness target)
    src: np.ndarray  # (E,)
    dst: np.ndarray  # (E,)
    weight: np.ndarray  # (E,)
    kind: np.ndarray  # (E,) codes into Panel.kinds (0 without kinds)
    group: np.ndarray  # (N,) codes into Panel.groups (0 without groups)
    anchor: np.ndarray  # (D,) the anchor, or any point of the space without one
    # Who each agent hears, as a table padded to the largest in-degree K: a gather where an
    # edge list would need a scatter, which XLA's CPU code runs element by element.
    heard: np.ndarray  # (N, K) agent indices (the agent itself in the padding)
    heard_weight: np.ndarray  # (N, K) edge weights, 0 in the padding
    heard_kind: np.ndarray  # (N, K) edge kinds, 0 in the padding


def heard_table(
    n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (N, K) table of the agents each agent hears, their weights and kinds, from edges src -> dst."""
    degree = np.bincount(dst, minlength=n) if dst.size else np.zeros(n, np.int64)
    k = max(int(degree.max()) if n else 0, 1)
    heard = np.tile(np.arange(n)[:, None], (1, k))
    w = np.zeros((n, k))
    kinds = np.zeros((n, k), np.int64)
    order = np.argsort(dst, kind="stable")
    d = dst[order]
    slot = np.arange(d.size) - np.searchsorted(d, d)  # position among the receiver's edges
    heard[d, slot] = src[order]
    w[d, slot] = weight[order]
    kinds[d, slot] = kind[order]
    return heard, w, kinds


@dataclass(frozen=True, eq=False)
class Panel:
    """Observed discussions; build one with ``make_panel``."""

    arrays: Arrays
    space: str  # "sphere" or "euclidean"
    conversation: np.ndarray  # (N,) discussion index of each agent
    conversations: tuple[str, ...]  # their names
    has_anchor: bool
    groups: tuple[str, ...] = ()  # the values of the attractor's column, in code order
    group_column: str | None = None
    usable: np.ndarray = field(default=None)  # (T - 1, N) transitions that can be scored
    dropped: int = 0  # transitions left out because an agent was missing (--missing drop)
    kinds: tuple[str, ...] = ()  # the kinds of tie, in code order (none: one kind)
    weighted: bool = False  # whether the ties carry weights other than 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.arrays.y.shape

    @property
    def dof(self) -> int:
        """Dimensions of one opinion's change: D in R^D, D - 1 on the sphere (a direction)."""
        d = self.arrays.y.shape[2]
        return d - 1 if self.space == "sphere" else d

    @property
    def n_conversations(self) -> int:
        return len(self.conversations)

    def transitions(self, conversations=None, before: int | None = None, after: int | None = None) -> np.ndarray:
        """Weights (T - 1, N): 1 for the usable transitions of ``conversations`` (indices; default
        all) whose origin round is before ``before`` and at or after ``after`` (within each
        discussion), else 0."""
        w = self.usable.astype(np.float64)
        if conversations is not None:
            w = w * np.isin(self.conversation, np.asarray(conversations))[None, :]
        t = np.arange(w.shape[0])[:, None]
        if before is not None:
            w = w * (t < before)
        if after is not None:
            w = w * (t >= after)
        return w


def _fill(y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Padding filled with each agent's nearest observed value (forward, then backward)."""
    y = y.copy()
    for t in range(1, y.shape[0]):
        gap = ~valid[t]
        y[t, gap] = y[t - 1, gap]
    seen = valid.copy()
    for t in range(1, y.shape[0]):
        seen[t] |= seen[t - 1]
    for t in range(y.shape[0] - 2, -1, -1):
        gap = ~seen[t]
        y[t, gap] = y[t + 1, gap]
    return y


def make_panel(
    y: np.ndarray,
    valid: np.ndarray,
    conversation: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    space: str,
    conversations: tuple[str, ...] | None = None,
    weight: np.ndarray | None = None,
    anchor: np.ndarray | None = None,
    group: np.ndarray | None = None,
    groups: tuple[str, ...] = (),
    group_column: str | None = None,
    kind: np.ndarray | None = None,
    kinds: tuple[str, ...] = (),
) -> Panel:
    """A ``Panel`` from observed values ``y`` (T, N, D) where ``valid`` (T, N), each agent's
    discussion ``conversation`` (N,) and the edges ``src`` -> ``dst``.

    A transition t -> t + 1 of agent i is usable when i was observed at both rounds and, if i
    hears anyone, at least one of them was observed at t: the agents i hears pull by the mean
    of those observed (a group member who gave no answer shows none to the others); the
    others are counted in ``dropped``. On the sphere ``y`` must hold unit vectors (the caller
    normalises). ``weight`` (E,) weighs each tie (negative: it pushes away), ``kind`` (E,) codes
    into ``kinds``.
    """
    y = np.asarray(y, np.float64)
    valid = np.asarray(valid, bool)
    if space not in ("sphere", "euclidean"):
        raise ValueError(f"space must be 'sphere' or 'euclidean', got {space!r}")
    n, d = y.shape[1], y.shape[2]
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    conversation = np.asarray(conversation, np.int64)
    if np.any(conversation[src] != conversation[dst]):
        raise ValueError("an edge joins agents of two discussions")
    y = _fill(np.where(valid[..., None], y, 0.0), valid)
    usable = valid[:-1] & valid[1:]
    present = usable.sum()
    hears = np.bincount(dst, minlength=n) > 0
    for t in range(usable.shape[0]):
        heard = np.bincount(dst, weights=valid[t, src], minlength=n) > 0
        usable[t] &= heard | ~hears
    first_round = np.argmax(valid, axis=0)
    first = y[first_round, np.arange(n)]
    if anchor is None:
        a = np.zeros(d)
        if space == "sphere":
            a[0] = 1.0  # any point of the sphere stands in: its coupling is held at 0
    else:
        a = np.asarray(anchor, np.float64)
    weighted = weight is not None and bool(np.any(np.asarray(weight) != 1.0))
    weight = np.ones(src.shape[0]) if weight is None else np.asarray(weight, np.float64)
    kind = np.zeros(src.shape[0], np.int64) if kind is None else np.asarray(kind, np.int64)
    arrays = Arrays(
        y,
        valid,
        first,
        src,
        dst,
        weight,
        kind,
        np.zeros(n, np.int64) if group is None else np.asarray(group, np.int64),
        a,
        *heard_table(n, src, dst, weight, kind),
    )
    names = conversations or tuple(str(c) for c in range(int(conversation.max()) + 1 if n else 0))
    return Panel(
        arrays,
        space,
        conversation,
        tuple(names),
        anchor is not None,
        tuple(groups),
        group_column,
        usable,
        int(present - usable.sum()),
        tuple(kinds),
        weighted,
    )
