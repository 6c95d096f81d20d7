"""Discussions from tables: the tidy CSV, JSON lines and Parquet files that studies publish.

One row per (conversation, round, agent): the columns ``conversation``, ``round`` and
``agent`` name it, and either numeric opinion columns (one per coordinate) or a text column
hold what the agent said or thought. Optional: a column of groups (an assigned stance, a
persona) constant per agent, and an ``edges`` table (``conversation``, ``src``, ``dst``: dst
hears src) where not everyone in a discussion hears everyone else, with optional columns
``weight`` (a number, negative for a tie that pushes away) and ``kind`` (a label: friend, foe,
follows). Every problem is a
``DataError``: one line naming the file, the column and the first bad row (counted from 1, the
header not counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind.io.trajectories import DataError
from hivemind.io.trajectories import edges as netcdf_edges

SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
KEYS = ("conversation", "round", "agent")


@dataclass(frozen=True)
class Discussions:
    """Many discussions as arrays, ready for ``theory.fitting.make_panel``."""

    y: np.ndarray | None  # (T, N, D) numbers, or None for texts
    texts: np.ndarray | None  # (T, N) object array of strings ("" where not observed), or None
    valid: np.ndarray  # (T, N)
    conversation: np.ndarray  # (N,) index into conversations
    conversations: tuple[str, ...]
    agents: tuple[str, ...]  # (N,) each agent's label within its discussion
    src: np.ndarray
    dst: np.ndarray
    group: np.ndarray | None  # (N,) codes into groups
    groups: tuple[str, ...]
    group_column: str | None
    anchor: np.ndarray | None = None
    anchor_text: str | None = None
    missing: int = 0  # (round, agent) cells absent and left out (--missing drop)
    weight: np.ndarray | None = None  # (E,) each tie's weight, None: all 1
    kind: np.ndarray | None = None  # (E,) codes into kinds, None: one kind of tie
    kinds: tuple[str, ...] = ()
    transform: str | None = None  # "log": the opinions are the logs of the table's numbers


def is_table(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def _read(path: Path):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=True, dtype=False, precise_float=True)
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give a CSV") from None
            frame = pd.read_parquet(path)
    except DataError:
        raise
    except Exception as e:  # pandas' parsers raise many types; the first line says what
        raise DataError(f"{path}: not a readable {suffix[1:]} table ({str(e).splitlines()[0][:120]})") from None
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the table has no rows")
    return frame


def _require(path: Path, frame, column: str, flag: str = "") -> None:
    if column not in frame.columns:
        hint = f" (set it with {flag})" if flag else ""
        raise DataError(f"{path}: column {column!r} is missing{hint}; the columns are {', '.join(map(str, frame.columns))}")


def _labels(path: Path, frame, column: str) -> np.ndarray:
    values = frame[column]
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if blank.any():
        raise DataError(f"{path}: column {column!r}, row {frame.index[int(np.argmax(blank.to_numpy()))] + 1}: empty")
    return values.astype(str).str.strip().to_numpy()


def _numbers(path: Path, frame, column: str, integer: bool = False) -> np.ndarray:
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if bad.any():
        row = int(np.argmax(bad))
        text = str(raw.iloc[row])
        what = "a whole number" if integer else "a finite number"
        wordy = any(c.isalpha() for c in text) and text.lower() not in ("nan", "inf", "-inf")
        hint = " (a text column? give it with --text)" if not integer and wordy else ""
        raise DataError(f"{path}: column {column!r}, row {frame.index[row] + 1}: {text[:40]!r} is not {what}{hint}")
    return values


def read(
    path: str | Path,
    opinion: tuple[str, ...] = ("opinion",),
    text: str | None = None,
    group: str | None = None,
    edges: str | Path | None = None,
    missing: str = "error",
    transform: str | None = None,
) -> Discussions:
    """The discussions of the table at ``path``: ``opinion`` columns (one per coordinate) or the
    ``text`` column, grouped by ``group`` when given (comma-separated columns: each combination
    of values a group; ``"stance"``/``"group"`` when present and ``group`` is None; ``""`` for
    none). ``missing="drop"`` accepts agents absent from some
    rounds (their transitions are left out); else such a table is refused. ``transform="log"``
    fits the logs of the numbers (heavy-tailed estimates of a quantity); every value must be > 0.

    Raises
    ------
    DataError
        One line naming the file, the column and the first bad row.
    """
    path = Path(path)
    frame = _read(path)
    frame.columns = [str(c) for c in frame.columns]
    for column in KEYS:
        _require(path, frame, column)
    columns = (text,) if text else opinion
    for column in columns:
        _require(path, frame, column, "--text" if text else "--opinion")
    if group is None:
        group = next((c for c in ("stance", "group") if c in frame.columns), "")
    by = [c.strip() for c in group.split(",") if c.strip()] if group else []
    for column in by:
        _require(path, frame, column, "--attractor-by")
    conv = _labels(path, frame, "conversation")
    agent = _labels(path, frame, "agent")
    rounds = _numbers(path, frame, "round", integer=True).astype(np.int64)
    anchor_rows = agent == "anchor"
    anchor, anchor_text = None, None
    if anchor_rows.any():
        if text:
            anchor_text = str(frame[text].to_numpy()[np.argmax(anchor_rows)])
        else:
            a = np.stack([_numbers(path, frame[anchor_rows], c) for c in columns], -1)
            if np.any(np.abs(a - a[0]) > 1e-12):
                raise DataError(f"{path}: column 'agent', row {int(np.flatnonzero(anchor_rows)[1]) + 1}: the anchor rows differ")
            anchor = a[0]
        keep = ~anchor_rows
        # The frame keeps its index: errors name the file's rows.
        frame, conv, agent, rounds = frame[keep], conv[keep], agent[keep], rounds[keep]
        if frame.shape[0] == 0:
            raise DataError(f"{path}: the table has only anchor rows")
    line = frame.index.to_numpy() + 1  # the file's row of each remaining row
    key = np.char.add(np.char.add(conv.astype(str), "\x00"), agent.astype(str))
    cell = np.char.add(np.char.add(key, "\x00"), rounds.astype(str))
    _, first, counts = np.unique(cell, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = np.sort(np.flatnonzero(~np.isin(np.arange(cell.size), first)))[0]
        raise DataError(
            f"{path}: column 'round', row {line[dup]}: conversation {conv[dup]!r}, round {rounds[dup]}, "
            f"agent {agent[dup]!r} appears twice"
        )
    if transform not in (None, "log"):
        raise DataError(f"{path}: --transform must be log or none, got {transform!r}")
    if text:
        if transform:
            raise DataError(f"{path}: --transform log needs numeric opinions, not a text column")
        values = frame[text].astype(str).to_numpy()
    else:
        values = np.stack([_numbers(path, frame, c) for c in columns], -1)
        if transform == "log":
            bad = values <= 0
            if bad.any():
                row, col = (int(v[0]) for v in np.nonzero(bad))
                raise DataError(
                    f"{path}: column {columns[col]!r}, row {line[row]}: {values[row, col]:g} has no logarithm "
                    "(--transform log needs numbers > 0)"
                )
            values = np.log(values)
    conversations, conv_code = np.unique(conv, return_inverse=True)
    agents_key, agent_code = np.unique(key, return_inverse=True)
    n = agents_key.size
    agent_conv = np.zeros(n, np.int64)
    agent_conv[agent_code] = conv_code
    agent_label = np.empty(n, object)
    agent_label[agent_code] = agent
    # Each discussion's first round is its round 0.
    start = np.full(conversations.size, np.iinfo(np.int64).max)
    np.minimum.at(start, conv_code, rounds)
    t = rounds - start[conv_code]
    length = np.zeros(conversations.size, np.int64)
    np.maximum.at(length, conv_code, t + 1)
    short = np.flatnonzero(length < 2)
    if short.size:
        row = int(np.flatnonzero(conv_code == short[0])[0])
        raise DataError(
            f"{path}: column 'round', row {line[row]}: conversation {conversations[short[0]]!r} has one round; "
            "a fit needs two or more"
        )
    tmax = int(length.max())
    valid = np.zeros((tmax, n), bool)
    valid[t, agent_code] = True
    expected = np.arange(tmax)[:, None] < length[agent_conv][None, :]
    absent = expected & ~valid
    if absent.any() and missing != "drop":
        r, i = (int(v[0]) for v in np.nonzero(absent))
        row = int(np.flatnonzero(agent_code == i)[0])
        raise DataError(
            f"{path}: column 'round', row {line[row]}: agent {agent_label[i]!r} of conversation {conversations[agent_conv[i]]!r} "
            f"has no row for round {r + start[agent_conv[i]]} (--missing drop leaves out the transitions it touches)"
        )
    y = texts = None
    if text:
        texts = np.full((tmax, n), "", object)
        texts[t, agent_code] = values
    else:
        y = np.zeros((tmax, n, values.shape[1]))
        y[t, agent_code] = values
    g, groups = None, ()
    if by:
        # Several columns: each combination of their values is a group ("2|-1").
        labels = _labels(path, frame, by[0])
        for column in by[1:]:
            labels = np.char.add(np.char.add(labels.astype(str), "|"), _labels(path, frame, column).astype(str))
        per_agent = np.empty(n, object)
        per_agent[agent_code] = labels
        changed = labels != per_agent[agent_code]
        if changed.any():
            row = int(np.argmax(changed))
            raise DataError(f"{path}: column {group!r}, row {line[row]}: agent {agent[row]!r} changes {group} in its discussion")
        g, groups = _codes(per_agent.astype(str))
    if edges:
        src, dst, weight, kind, kinds = _edges(path, edges, conversations, agent_conv, agent_label)
    else:
        (src, dst), weight, kind, kinds = _everyone(agent_conv), None, None, ()
    return Discussions(
        y,
        texts,
        valid,
        agent_conv,
        tuple(map(str, conversations)),
        tuple(map(str, agent_label)),
        src,
        dst,
        g,
        groups,
        group or None,
        anchor,
        anchor_text,
        int(absent.sum()),
        weight,
        kind,
        kinds,
        transform,
    )


def _codes(labels: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each label's code, and the distinct labels in ``_sortable`` order (code i is label i)."""
    uniq, inverse = np.unique(labels, return_inverse=True)
    groups = tuple(_sortable(uniq))
    order = {v: i for i, v in enumerate(groups)}
    return np.array([order[v] for v in uniq[inverse]], np.int64), groups


def _sortable(values) -> list[str]:
    """Group labels in numeric order when they are numbers (-2, -1, 0, 1, 2; combinations such
    as "-2|1" by each part), else as text."""
    try:
        return sorted(values, key=lambda v: tuple(float(part) for part in str(v).split("|")))
    except ValueError:
        return sorted(values)


def _everyone(agent_conv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of distinct agents of one discussion."""
    order = np.argsort(agent_conv, kind="stable")
    src, dst = [], []
    bounds = np.flatnonzero(np.diff(agent_conv[order])) + 1
    for members in np.split(order, bounds):
        i, j = np.meshgrid(members, members, indexing="ij")
        off = i != j
        src.append(i[off])
        dst.append(j[off])
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


def _edges(path: Path, edges, conversations, agent_conv, agent_label):
    """src, dst, and the optional columns: weight (None without it), kind codes and names."""
    epath = Path(edges)
    frame = _read(epath)
    frame.columns = [str(c) for c in frame.columns]
    for column in ("conversation", "src", "dst"):
        _require(epath, frame, column)
    conv = _labels(epath, frame, "conversation")
    index = {(conversations[agent_conv[i]], agent_label[i]): i for i in range(agent_label.size)}
    out = []
    for column in ("src", "dst"):
        labels = _labels(epath, frame, column)
        ids = np.array([index.get((c, a), -1) for c, a in zip(conv, labels, strict=True)], np.int64)
        if np.any(ids < 0):
            row = int(np.argmax(ids < 0))
            raise DataError(
                f"{epath}: column {column!r}, row {row + 1}: agent {labels[row]!r} is not in conversation {conv[row]!r} of {path}"
            )
        out.append(ids)
    loops = out[0] == out[1]
    if loops.any():
        row = int(np.argmax(loops))
        raise DataError(f"{epath}: column 'dst', row {row + 1}: agent {agent_label[out[1][row]]!r} hears itself")
    weight = _numbers(epath, frame, "weight") if "weight" in frame.columns else None
    if weight is not None and np.any(weight == 0):
        row = int(np.argmax(weight == 0))
        raise DataError(f"{epath}: column 'weight', row {row + 1}: a tie of weight 0 is no tie; leave the row out")
    kind, kinds = _codes(_labels(epath, frame, "kind")) if "kind" in frame.columns else (None, ())
    return out[0], out[1], weight, kind, kinds


def read_netcdf(path: str | Path, group: str | None = None, missing: str = "error") -> Discussions:
    """Discussions from a NetCDF file whose ``embedding`` (or ``opinion``) has the dimensions
    (conversation, round, agent, coord), NaN where an agent was not observed (a smaller or
    shorter discussion). Optional: a group per agent, ``stance(conversation, agent)`` or
    ``agent_group(conversation, agent)`` (``group`` names another variable, ``""`` none), and
    ``anchor(coord)``. Everyone in a discussion hears everyone else in it. A file without the
    conversation dimension is one conversation, its graph read as ``trajectories.load`` reads it."""
    import xarray as xr

    path = Path(path)
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a NetCDF file ({str(e).splitlines()[0][:120]})") from None
    with ds:
        var = next((v for v in ("embedding", "opinion") if v in ds), None)
        if var is None:
            raise DataError(f"{path}: embedding: no such variable (expected embedding(conversation, round, agent, coord))")
        dims = ("conversation", "round", "agent", "coord")
        one = ds[var].dims == dims[1:]
        if ds[var].dims != dims and not one:
            raise DataError(f"{path}: {var} must have dimensions {dims} or {dims[1:]}, got {ds[var].dims}")
        values = np.asarray(ds[var].values, np.float64)  # (C, R, A, D)
        if one:
            values = values[None]
            edges = netcdf_edges(path, ds, values.shape[2])
        if np.any(np.isinf(values)):
            raise DataError(f"{path}: {var} holds infinite values")
        names = tuple(str(v) for v in ds["conversation"].values) if "conversation" in ds.coords else None
        if group is None:
            group = next((v for v in ("stance", "agent_group") if v in ds.variables), "")
        labels = None
        if group:
            if group not in ds.variables:
                raise DataError(f"{path}: {group}: no such variable")
            want = ("agent",) if one else ("conversation", "agent")
            if ds[group].dims != want:
                raise DataError(f"{path}: {group} must have dimensions {want}, got {ds[group].dims}")
            labels = np.asarray(ds[group].values).astype(str).reshape(values.shape[0], values.shape[2])
        anchor = np.asarray(ds["anchor"].values, np.float64) if "anchor" in ds else None
    c, r, a, d = values.shape
    observed = np.all(np.isfinite(values), -1)  # (C, R, A)
    partly = np.any(np.isfinite(values), -1) & ~observed
    if partly.any():
        where = np.argwhere(partly)[0].tolist()
        raise DataError(f"{path}: {var} is NaN in some coordinates only at (conversation, round, agent) {where}")
    present = observed.any(1)  # (C, A): the agents of each discussion
    conv_of, agent_of = np.nonzero(present)
    n = conv_of.size
    if n == 0:
        raise DataError(f"{path}: {var} holds no observed value")
    y = np.transpose(values, (1, 0, 2, 3))[:, conv_of, agent_of]  # (R, N, D)
    valid = np.transpose(observed, (1, 0, 2))[:, conv_of, agent_of]
    length = np.zeros(c, np.int64)
    for k in range(c):
        rounds = np.flatnonzero(observed[k].any(-1))
        length[k] = rounds.max() + 1 if rounds.size else 0
    for k in np.flatnonzero(present.any(1)):
        if length[k] < 2:
            raise DataError(f"{path}: {var}: conversation {names[k] if names else k} has one round; a fit needs two or more")
    g, groups = None, ()
    if labels is not None:
        g, groups = _codes(labels[conv_of, agent_of])
    _, conv_code = np.unique(conv_of, return_inverse=True)
    kept = np.unique(conv_of)
    conversations = tuple(names[k] for k in kept) if names else tuple(str(k) for k in kept)
    if one:
        # Agents are renumbered to those observed: map the file's edges onto them.
        new = np.full(a, -1)
        new[agent_of] = np.arange(n)
        keep = (new[edges[0]] >= 0) & (new[edges[1]] >= 0)
        src, dst = new[edges[0][keep]], new[edges[1][keep]]
    else:
        src, dst = _everyone(conv_code)
    y = np.where(valid[..., None], y, 0.0)
    expected = np.arange(r)[:, None] < length[conv_of][None, :]
    absent = expected & ~valid
    if absent.any() and missing != "drop":
        t, i = (int(v[0]) for v in np.nonzero(absent))
        raise DataError(
            f"{path}: {var}: agent {agent_of[i]} of conversation {conversations[conv_code[i]]} is NaN at round {t} "
            "(--missing drop leaves out the transitions it touches)"
        )
    return Discussions(
        y, None, valid & expected, conv_code, conversations, tuple(str(v) for v in agent_of), src, dst, g, groups,
        group or None, anchor, None, int(absent.sum()),
    )  # fmt: skip
