"""``hivemind fit`` on many discussions: tables (CSV, JSON lines, Parquet) and NetCDF files with a
``conversation`` dimension, opinions as numbers (R^d) or texts (embedded, on the sphere).

Wires the layers below it: ``io.tables`` reads, the sentence embedder (this package) embeds
texts, with a cache beside the output, ``theory.fitting`` fits, scores and chooses, and
``io.results`` writes ``fit.json``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind.io.tables import Discussions, is_table, read, read_netcdf
from hivemind.io.trajectories import DataError

# Unit vectors to this tolerance are directions: the sphere is chosen for them.
UNIT = 1e-6
EMBEDDINGS_CACHE = "embeddings.npz"


@dataclass(frozen=True)
class Options:
    opinion: tuple[str, ...] = ("opinion",)
    text: str | None = None
    attractor_by: str | None = None  # None: stance or group when present; "" or "none": no attractor per group
    edges: str | None = None
    missing: str = "error"
    space: str | None = None  # None: chosen from the data
    models: tuple[str, ...] | None = None
    folds: int = 5
    test_share: float = 0.5
    train: int | None = None
    seed: int = 0
    anchor_text: str | None = None
    embedder: str = "minilm"  # or an ONNX sentence embedder with tokenizer.json beside it


def has_conversations(path: str | Path, space: str | None = None) -> bool:
    """Whether ``path`` is for this module: a table, a NetCDF file with a conversation dimension
    or of ``opinion`` (numbers), or ``embedding`` of one coordinate (no direction) or with
    ``space="euclidean"``. Embeddings of one conversation (directions, normalised: a live run, a
    NetCDF file) go to ``live.forecast``."""
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
    by = "" if options.attractor_by in ("", "none") else options.attractor_by
    if is_table(path):
        return read(path, options.opinion, options.text, by, options.edges, options.missing)
    return read_netcdf(path, by, options.missing)


def _embedder_id(name: str) -> str:
    """What the cache keys hold besides the text: the embedder, so that another one embeds anew."""
    from hivemind.live.packaged import sha256_file

    return "minilm" if name == "minilm" else sha256_file(Path(name))


def _load_embedder(name: str, say: Callable[[str], None]):
    from hivemind.errors import InputError
    from hivemind.live.embedders import minilm, onnx_file

    try:
        return minilm(say=say) if name == "minilm" else onnx_file(Path(name))
    except InputError as e:
        raise DataError(f"--embedder: {e}") from None


def _embed(
    texts: np.ndarray, valid: np.ndarray, cache: Path | None, say: Callable[[str], None], embedder: str = "minilm"
) -> np.ndarray:
    """Unit embeddings (T, N, D) of the observed texts, with ``embedder`` (the default sentence
    embedder, or an ONNX file); the ones in ``cache`` (a file beside the output) are not
    embedded again."""
    who = _embedder_id(embedder)
    wanted = sorted({str(t) for t in texts[valid]})
    keys = [hashlib.sha256(f"{who}\0{t}".encode()).hexdigest() for t in wanted]
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            known = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
    todo = [(t, k) for t, k in zip(wanted, keys, strict=True) if k not in known]
    if todo:
        say(f"embedding {len(todo)} texts with {Path(embedder).name} ({len(wanted) - len(todo)} cached)")
        model = _load_embedder(embedder, say)
        for i in range(0, len(todo), 64):
            batch = todo[i : i + 64]
            for (_, k), v in zip(batch, model.embed_many([t for t, _ in batch]), strict=True):
                known[k] = v
        model.close()
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    index = dict(zip(wanted, keys, strict=True))
    d = known[keys[0]].shape[0]
    y = np.zeros((*texts.shape, d))
    for t, i in zip(*np.nonzero(valid), strict=True):
        y[t, i] = known[index[str(texts[t, i])]]
    norm = np.linalg.norm(y, axis=-1, keepdims=True)
    return np.where(norm > 0, y / np.where(norm > 0, norm, 1.0), 0.0)


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


def load_panel(
    path: str | Path,
    options: Options,
    cache: Path | None = None,
    say: Callable[[str], None] = print,
    data: Discussions | None = None,
):
    """The ``theory.fitting.Panel`` of the discussions in ``path`` (``data``: already read from it)."""
    from hivemind.theory.fitting import make_panel

    data = read_any(path, options) if data is None else data
    if data.texts is not None:
        y = _embed(data.texts, data.valid, cache, say, options.embedder)
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
        anchor = _embed(np.array([[text]], object), np.ones((1, 1), bool), cache, say, options.embedder)[0, 0]
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
    )


def chosen_models(path, options: Options, anchor: bool, group_column: str | None):
    """The models of ``options.models`` (None: the defaults), checked against the data; a
    ``DataError`` naming ``--models`` otherwise."""
    from hivemind.theory.fitting import check_models, parse

    if not options.models:
        return None
    try:
        models = tuple(parse(m) for m in options.models)
        check_models(models, anchor, group_column)
    except ValueError as e:
        raise DataError(f"{path}: --models: {e}") from None
    return models


def check(path, options: Options) -> Discussions:
    """Everything about ``path`` and ``options`` that can be refused before any output is written
    (the table, its columns and rows, the models), without embedding texts; returns what was read."""
    data = read_any(path, options)
    if data.texts is None and options.anchor_text:
        raise DataError(f"{path}: --anchor-text needs a text column (--text)")
    if data.texts is not None and options.embedder != "minilm" and not Path(options.embedder).is_file():
        raise DataError(f"--embedder: {options.embedder}: no such file (minilm, or an ONNX file with tokenizer.json beside it)")
    chosen_models(path, options, data.anchor is not None or bool(options.anchor_text or data.anchor_text), data.group_column)
    if data.y is not None:
        choose_space(data.y, data.valid, options.space, path)
    checked_design(path, options, len(data.conversations), data.valid.shape[0] - 1)
    return data


def checked_design(path, options: Options, conversations: int, rounds: int):
    """The ``theory.fitting.Design`` of ``options``, checked against the data's size."""
    from hivemind.theory.fitting import Design, check_design

    d = Design(options.folds, options.test_share, options.train, options.seed)
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
    formats: tuple[str, ...] = ("png",),
    data: Discussions | None = None,
) -> dict:
    """The models of ``theory.fitting`` fitted to the discussions in ``path``, scored and compared;
    returns ``fit.json``'s document (written to ``out`` when given, with the figure ``fit.png``).
    ``data``: the discussions already read from ``path`` (by ``check``)."""
    from hivemind.io.results import save_json
    from hivemind.theory.fitting import fit_panel

    cache = Path(out) / EMBEDDINGS_CACHE if out is not None else None
    panel = load_panel(path, options, cache, say, data)
    models = chosen_models(path, options, panel.has_anchor, panel.group_column)
    design = checked_design(path, options, panel.n_conversations, panel.shape[0] - 1)
    try:
        comparison = fit_panel(panel, models, design, say)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    doc = comparison.to_json()
    doc["data"]["file"] = str(path)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_json(doc, out / "fit.json")
        from hivemind.plot import discussions_figure, save_figure

        save_figure(discussions_figure(doc), out / "fit", formats)
    return doc


def skill_text(score: dict | None, base: str) -> str:
    """A score's skill against ``base`` with its interval, "+0.273 [+0.238, +0.307]", or "-"."""
    if not score or score.get(f"skill_vs_{base}") is None:
        return "-"
    iv = score.get(f"interval_vs_{base}")
    s = f"{score[f'skill_vs_{base}']:+.3f}"
    return s + (f" [{iv[0]:+.3f}, {iv[1]:+.3f}]" if iv else "")


def _params_line(params: dict) -> str:
    shown = []
    for k, v in params.items():
        if k in ("coupling_decay", "attractor_drift"):
            continue
        if isinstance(v, float):
            shown.append(f"{k} {v:.3g}")
        elif v is None:
            shown.append(f"{k} none" if k == "coupling_timescale" else f"{k} -")
        elif isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()):  # by (receiver, sender) group
            shown.append(f"{k} " + " ".join(f"{r}<-{c}:{_short(x)}" for r, row in v.items() for c, x in row.items()))
        elif isinstance(v, dict):
            shown.append(f"{k} " + " ".join(f"{g}:{_short(x)}" for g, x in v.items()))
        else:
            shown.append(f"{k} {_short(v)}")
    return ", ".join(shown)


def _short(v) -> str:
    if v is None:
        return "-"
    a = np.ravel(np.asarray(v, np.float64))
    return f"{a[0]:.3g}" if a.size == 1 else f"({a.size} coords)"


def format_fit(doc: dict) -> str:
    """The verdict first (the model chosen on training data and its held-out skill), then one
    line per model."""
    d, design = doc["data"], doc["design"]
    best = doc["best"]
    held = doc.get("best_heldout") or {}
    lines = [
        f"{d['conversations']} discussions, {d['agents']} agents, up to {d['rounds']} rounds, {d['dims']} dims ({doc['space']}); "
        f"{design['training_conversations']} fitted, {design['heldout_conversations']} held out",
        f"best (chosen on training data: {design['selection']}): {best}",
        f"  held-out skill vs persistence {skill_text(held, 'persistence')}, vs neighbours {skill_text(held, 'neighbours')}, "
        f"vs mean {skill_text(held, 'mean')} (90% intervals over discussions)",
        f"  {_params_line(doc['models'][best]['params'])}",
        "",
        f"  {'model':<28}{'k':>4}  {'cv vs persistence':<28}{'held-out vs persistence':<28}{'later rounds':>14}",
    ]
    for name, m in doc["models"].items():
        later = m.get("one_step", {}).get("skill_vs_persistence")
        cv, out = skill_text(m.get("cv"), "persistence"), skill_text(m.get("heldout"), "persistence")
        lines.append(f"  {name:<28}{m['n_params']:>4}  {cv:<28}{out:<28}{'-' if later is None else format(later, '+.3f'):>14}")
    return "\n".join(lines)
