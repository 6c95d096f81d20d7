"""``hivemind fit``'s data: tables (CSV, JSON lines, Parquet) and NetCDF files of many
discussions, opinions as numbers (R^d, optionally their logs) or texts (embedded, on the
sphere), ties of several kinds and weights, read into a ``Panel``, checked, fitted.

``io.tables`` reads; texts are embedded by the function the caller passes (``embed``: the
live layer's ``embedders.table_embedder``, which caches beside the output); ``compare`` fits,
scores and chooses. Everything that can be refused is refused by ``check`` before any output
is written: the table, its columns and rows, the models, the design, and models the training
data cannot carry (``identify``), as one ``DataError`` line naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind import datasets
from hivemind.io.results import save_json
from hivemind.io.tables import Discussions, is_table, read, read_netcdf
from hivemind.io.trajectories import DataError, Trajectories
from hivemind.io.trajectories import load as load_trajectories
from hivemind.theory.fitting.compare import (
    SCHEMA_VERSION,
    Comparison,
    Design,
    check_design,
    check_fittable,
    check_models,
    default_models,
    fit_panel,
    split,
)
from hivemind.theory.fitting.models import parse
from hivemind.theory.fitting.panel import Panel, make_panel

# Unit vectors to this tolerance are directions: the sphere is chosen for them.
UNIT = 1e-6
EMBEDDINGS_CACHE = "embeddings.npz"
# embed(texts (T, N) object array, valid (T, N)) -> (T, N, D) unit vectors of the observed texts.
Embed = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Options:
    opinion: tuple[str, ...] = ("opinion",)
    text: str | None = None
    attractor_by: str | None = None  # None: stance or group when present; "" or "none": no attractor per group
    edges: str | None = None
    missing: str = "error"
    transform: str | None = None  # "log": fit the logs of the numbers (estimates of a quantity)
    space: str | None = None  # None: chosen from the data
    models: tuple[str, ...] | None = None
    folds: int = 5
    test_share: float = 0.5
    train: int | None = None
    seed: int = 0
    anchor_text: str | None = None
    level: float = 0.9  # of the parameters' intervals


def has_conversations(path: str | Path, space: str | None = None) -> bool:
    """Whether ``path`` is for this module: a table, a NetCDF file with a conversation dimension
    or of ``opinion`` (numbers), or ``embedding`` of one coordinate (no direction) or with
    ``space="euclidean"``. Embeddings of one conversation (directions, normalised: a live run, a
    NetCDF file) are fitted one conversation at a time (``fit_trajectories``)."""
    if str(path).startswith(datasets.PREFIX):
        return True
    path = Path(path)
    if is_table(path):
        return True
    if path.is_dir() or not path.is_file():
        return False
    import xarray as xr

    try:
        with xr.open_dataset(path) as ds:
            var = next((v for v in ("embedding", "opinion") if v in ds), None)
            if var is None:
                return False
            if "conversation" in ds[var].dims or var == "opinion" or space == "euclidean":
                return True
            return ds[var].shape[-1] < 2
    except (OSError, ValueError):
        return False


def read_any(path: str | Path, options: Options) -> Discussions:
    """The discussions of a table, a NetCDF file, or ``dataset:NAME`` (``hivemind.datasets``)."""
    try:
        path = datasets.resolve(path)
    except datasets.UnknownDataset as e:
        raise DataError(str(e)) from None
    by = "" if options.attractor_by in ("", "none") else options.attractor_by
    if is_table(path):
        return read(path, options.opinion, options.text, by, options.edges, options.missing, options.transform)
    if options.transform:
        raise DataError(f"{path}: --transform applies to tables of numbers, not to NetCDF files")
    return read_netcdf(path, by, options.missing)


def choose_space(y: np.ndarray, valid: np.ndarray, space: str | None, path) -> tuple[str, np.ndarray]:
    """The data's space (unit vectors of 2+ coordinates: the sphere; any other numbers: R^d), or
    ``space`` when given; on the sphere the values are normalised."""
    norms = np.linalg.norm(y[valid], axis=-1)
    if space is None:
        space = "sphere" if y.shape[-1] >= 2 and np.all(np.abs(norms - 1.0) < UNIT) else "euclidean"
    if space == "sphere":
        if y.shape[-1] < 2:
            raise DataError(f"{path}: --space sphere needs opinions of two or more coordinates, got one")
        if np.any(norms <= 1e-12):
            raise DataError(f"{path}: --space sphere: a zero vector has no direction")
        y = np.where(valid[..., None], y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-300), 0.0)
    return space, y


def _embedded(path, embed: Embed | None, texts: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if embed is None:
        raise DataError(
            f"{path}: texts need an embedder: pass embed=hivemind.live.embedders.table_embedder() (hivemind fit does)"
        )
    return embed(texts, valid)


def load_panel(path: str | Path, options: Options, embed: Embed | None = None, data: Discussions | None = None) -> Panel:
    """The ``Panel`` of the discussions in ``path`` (``data``: already read from it); texts are
    embedded by ``embed``."""
    data = read_any(path, options) if data is None else data
    if data.texts is not None:
        y = _embedded(path, embed, data.texts, data.valid)
        space = "sphere"
        if options.space == "euclidean":
            space = "euclidean"
    else:
        space, y = choose_space(data.y, data.valid, options.space, path)
    anchor = data.anchor
    text = options.anchor_text or data.anchor_text
    if text is not None:
        if data.texts is None:
            raise DataError(f"{path}: an anchor text needs a text column (--text)")
        anchor = _embedded(path, embed, np.array([[text]], object), np.ones((1, 1), bool))[0, 0]
    if anchor is not None and space == "sphere":
        anchor = anchor / max(np.linalg.norm(anchor), 1e-300)
    if anchor is not None and anchor.shape[0] != y.shape[-1]:
        raise DataError(f"{path}: the anchor has {anchor.shape[0]} coordinates, the opinions {y.shape[-1]}")
    return make_panel(
        y,
        data.valid,
        data.conversation,
        data.src,
        data.dst,
        space=space,
        conversations=data.conversations,
        anchor=anchor,
        group=data.group,
        groups=data.groups,
        group_column=data.group_column,
        weight=data.weight,
        kind=data.kind,
        kinds=data.kinds,
    )


def chosen_models(path, options: Options, anchor: bool, group_column: str | None, kinds: tuple[str, ...] = ()):
    """The models of ``options.models`` (None: the defaults), checked against the data; a
    ``DataError`` naming ``--models`` otherwise."""
    if not options.models:
        return None
    try:
        models = tuple(parse(m) for m in options.models)
        check_models(models, anchor, group_column, kinds)
    except ValueError as e:
        raise DataError(f"{path}: --models: {e}") from None
    return models


def check(path, options: Options) -> Discussions:
    """Everything about ``path`` and ``options`` that can be refused before any output is written
    (the table, its columns and rows, the models, the design, and for numbers the models that
    the training data cannot carry), without embedding texts; returns what was read."""
    data = read_any(path, options)
    if data.texts is None and options.anchor_text:
        raise DataError(f"{path}: --anchor-text needs a text column (--text)")
    anchor = data.anchor is not None or bool(options.anchor_text or data.anchor_text)
    models = chosen_models(path, options, anchor, data.group_column, data.kinds)
    design = checked_design(path, options, len(data.conversations), data.valid.shape[0] - 1)
    if data.y is not None:
        panel = load_panel(path, options, data=data)
        models = models or default_models(panel)
        try:
            check_fittable(models, panel, split(panel, design))
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
    return data


def checked_design(path, options: Options, conversations: int, rounds: int) -> Design:
    """The ``Design`` of ``options``, checked against the data's size."""
    d = Design(options.folds, options.test_share, options.train, options.seed, level=options.level)
    try:
        check_design(d, conversations, rounds)
    except ValueError as e:
        raise DataError(f"{path}: --{e}") from None
    return d


def fit_discussions(
    path: str | Path,
    out: str | Path | None = None,
    options: Options = Options(),
    say: Callable[[str], None] = print,
    data: Discussions | None = None,
    embed: Embed | None = None,
) -> Comparison:
    """The models of ``theory.fitting`` fitted to the discussions in ``path``, scored and
    compared: the ``Comparison`` (its ``to_json()`` is ``fit.json``, written to ``out`` when
    given). ``data``: the discussions already read from ``path`` (by ``check``); ``embed``: how
    texts become points of the sphere."""
    data = read_any(path, options) if data is None else data
    panel = load_panel(path, options, embed, data)
    models = chosen_models(path, options, panel.has_anchor, panel.group_column, panel.kinds)
    design = checked_design(path, options, panel.n_conversations, panel.shape[0] - 1)
    try:
        comparison = fit_panel(panel, models, design, say)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    comparison.about.update(file=str(path), transform=options.transform, missing_answers=data.missing)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_json(comparison.to_json(), out / "fit.json")
    return comparison


def trajectory_panel(t: Trajectories) -> Panel:
    """One conversation of embeddings (``io.trajectories``) as a panel of one discussion on the
    sphere, with its graph, anchor and agents' groups (the column ``group``) where it has them."""
    kw = {}
    if t.group is not None and len(set(t.group)) > 1:
        names = tuple(dict.fromkeys(t.group))
        kw = {"group": np.array([names.index(g) for g in t.group]), "groups": names, "group_column": "group"}
    n = t.y.shape[1]
    valid = np.ones(t.y.shape[:2], bool)
    return make_panel(t.y, valid, np.zeros(n, np.int64), t.src, t.dst, space="sphere", anchor=t.anchor, **kw)


def fit_trajectories(
    path: str | Path, out: str | Path | None = None, design: Design | None = None, say: Callable[[str], None] = print
) -> dict[str, Comparison]:
    """Each conversation of ``path`` (a NetCDF file of embeddings, or a live run's folder: one per
    decoding) fitted as one discussion, held out by rounds (``design.train`` transitions fitted);
    ``out/fit.json`` is its document, or ``{"decodings": {name: document}}`` for several."""
    design = design or Design(test_share=0.0)
    fits = {}
    for t in load_trajectories(path):
        panel = trajectory_panel(t)
        check_design(design, 1, panel.shape[0] - 1)
        try:
            fits[t.name] = fit_panel(panel, design=design, say=say)
        except ValueError as e:
            raise DataError(f"{path}: {t.name + ': ' if t.name else ''}{e}") from None
        fits[t.name].about.update(file=str(path), **({"decoding": t.name} if t.name else {}))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        docs = {name: c.to_json() for name, c in fits.items()}
        save_json(docs[""] if list(docs) == [""] else {"schema_version": SCHEMA_VERSION, "decodings": docs}, out / "fit.json")
    return fits
