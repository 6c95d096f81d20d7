"""Every model fitted to a panel of discussions, scored three ways, and one chosen honestly.

The design (``Design``): a share of the discussions (``test_share``, drawn with the seed) is
held out; the models are fitted on the others. Three scores, each against the baselines:

- ``cv``: k-fold cross-validation over whole training discussions (each fold's every round
  forecast by the model fitted on the other folds);
- ``heldout``: the held-out discussions, every round, by the model fitted on all training
  discussions;
- ``one_step``: later rounds: the first ``train`` transitions of every discussion fitted, the
  rest forecast.

The model called ``best`` is chosen on training data alone: the highest cross-validated skill
against persistence within the training discussions, or, with too few discussions for folds
(one conversation), the lowest AIC of the fit to the training rounds. Its held-out skill is
then reported once. Nothing held out enters a fit, a start, a baseline or the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np

from hivemind.theory.fitting import estimate
from hivemind.theory.fitting.models import BASELINES, Model, defaults
from hivemind.theory.fitting.panel import Panel
from hivemind.theory.fitting.results import ModelFit
from hivemind.theory.fitting.scores import baseline_errors, score

SCHEMA_VERSION = 1  # of fit.json; the schema is fit.schema.json beside this module
# Two models whose cross-validated skills agree to this many digits are one: the smaller wins.
TIE_DIGITS = 4


@dataclass(frozen=True)
class Design:
    folds: int = 5
    test_share: float = 0.5
    train: int | None = None  # transitions of each discussion fitted for one_step (default: half)
    seed: int = 0
    intervals: bool = True


@dataclass
class Comparison:
    panel: Panel
    design: Design
    fits: dict[str, ModelFit]
    best: str
    selection: str
    split: dict
    baselines: dict
    training: np.ndarray  # indices of the discussions fitted
    heldout: np.ndarray  # indices of the discussions held out
    fold: np.ndarray | None  # each training discussion's fold (None without folds)

    def to_json(self) -> dict:
        p = self.panel
        t, n, d = p.shape
        out = {
            "schema_version": SCHEMA_VERSION,
            "space": p.space,
            "data": {
                "conversations": p.n_conversations,
                "agents": int(n),
                "rounds": int(t),
                "dims": int(d),
                "transitions": int(p.usable.sum()),
                "dropped_transitions": p.dropped,
                "anchor": p.has_anchor,
                "attractor_groups": {"column": p.group_column, "values": list(p.groups)} if p.groups else None,
            },
            "design": {
                "folds": self.design.folds,
                "test_share": self.design.test_share,
                "train_transitions": self.split["train_transitions"],
                "seed": self.design.seed,
                "training_conversations": self.split["training"],
                "heldout_conversations": self.split["heldout"],
                "selection": self.selection,
                "interval_level": 0.9,
                "intervals": "parameters: cluster-robust sandwich over the clusters named per model; "
                "skills: percentile bootstrap over discussions (rounds for one conversation), 1000 resamples",
            },
            "baselines": self.baselines,
            "models": {name: f.to_json() for name, f in self.fits.items()},
            "best": self.best,
        }
        best = self.fits[self.best].scores
        out["best_heldout"] = best.get("heldout") or best.get("one_step")
        return out


def _held_out(c: int, test_share: float) -> int:
    """How many of ``c`` discussions are held out: at least one, never all, none of one."""
    if c < 2 or test_share <= 0:
        return 0
    return min(max(1, round(test_share * c)), c - 1)


def check_design(design: Design, conversations: int, rounds: int) -> int:
    """Raise ``ValueError`` for a design the data cannot carry; return the transitions of each
    discussion fitted for the later-rounds score. Fewer training discussions than twice the folds
    choose by later training rounds instead; more folds than discussions is a mistake."""
    k = max(1, rounds // 2) if design.train is None else design.train
    if not 1 <= k <= rounds:
        raise ValueError(f"train must be from 1 to {rounds} transitions, got {k}")
    training = conversations - _held_out(conversations, design.test_share)
    if design.folds > max(training, Design.folds):
        raise ValueError(f"folds must be at most the {training} training discussions, got {design.folds}")
    return k


def _split(panel: Panel, design: Design, key) -> tuple[np.ndarray, np.ndarray]:
    c = panel.n_conversations
    n_test = _held_out(c, design.test_share)
    if n_test == 0:
        return np.arange(c), np.arange(0)
    order = np.asarray(jax.random.permutation(key, c))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _fold_of(train: np.ndarray, folds: int, key) -> np.ndarray:
    order = np.asarray(jax.random.permutation(key, train.size))
    fold = np.empty(train.size, np.int64)
    fold[order] = np.arange(train.size) % folds
    return fold


def _scored(panel: Panel, model: Model, params: dict, weights: np.ndarray, fitted: np.ndarray, by: str, key) -> dict:
    sq = estimate.errors(panel.space, estimate.predict(model, panel, params), panel.arrays.y[1:])
    return score(panel, sq, baseline_errors(panel, fitted), weights, by, key)


def most_skilful(skills: dict[str, float], n_params: dict[str, int]) -> str:
    """The model of highest skill; skills equal to ``TIE_DIGITS`` digits go to the one with fewer
    parameters (a coupling fitted to zero makes two nested models one)."""
    return max(skills, key=lambda n: (round(skills[n], TIE_DIGITS), -n_params[n]))


def _validated(panel: Panel, models, fits: dict[str, ModelFit], main: np.ndarray) -> tuple[str, str]:
    """With too few discussions for folds: each model fitted on the first two thirds of the
    training rounds and scored on the rest of them, the highest skill against persistence
    winning (``validation`` in each model's scores); with fewer than two training rounds, the
    lowest AIC."""
    rounds = np.flatnonzero(main.sum(1) > 0)
    if rounds.size < 2:
        best = min(fits, key=lambda n: (fits[n].information["aic"], fits[n].n_params))
        return best, "lowest AIC of the fit to the training transitions (too few to validate on)"
    cut = int(rounds[max(1, round(2 * rounds.size / 3)) - 1]) + 1
    early, late = main * (np.arange(main.shape[0]) < cut)[:, None], main * (np.arange(main.shape[0]) >= cut)[:, None]
    skills = {}
    for m in models:
        e = estimate.fit(m, panel, early)
        sq = estimate.errors(panel.space, estimate.predict(m, panel, e.params), panel.arrays.y[1:])
        base = baseline_errors(panel, early)
        v = {"fit_transitions": cut, "mse": float((sq * late).sum() / late.sum())}
        for b in BASELINES:
            v[f"skill_vs_{b}"] = 1.0 - float((sq * late).sum()) / max(float((base[b] * late).sum()), 1e-300)
        fits[m.name].scores["validation"] = v
        skills[m.name] = v["skill_vs_persistence"]
    return most_skilful(skills, {n: f.n_params for n, f in fits.items()}), (
        f"highest one-step skill against persistence on the training transitions from round {cut}, "
        f"each model fitted on the earlier ones (too few discussions for folds)"
    )


def check_models(models, anchor: bool, group_column: str | None) -> None:
    """Raise ``ValueError`` for a model the data cannot carry: an anchor model without an anchor,
    a model per column whose column is not the data's groups."""
    for m in models:
        if m.base == "anchor" and not anchor:
            raise ValueError(f"model {m.name!r} needs an anchor, and the data has none")
        if m.by and m.by != group_column:
            raise ValueError(f"model {m.name!r}: the data's groups come from {group_column!r} (--attractor-by), not {m.by!r}")


def fit_panel(panel: Panel, models: tuple[Model, ...] | None = None, design: Design = Design(), say=None) -> Comparison:
    """Every model of ``models`` (default: ``models.defaults``) fitted to ``panel`` and scored
    by ``design``; see the module's docstring."""
    say = say or (lambda _: None)
    models = models or defaults(panel.has_anchor, panel.group_column)
    check_models(models, panel.has_anchor, panel.group_column)
    k_split, k_folds, k_scores = jax.random.split(jax.random.key(design.seed), 3)
    train_c, test_c = _split(panel, design, k_split)
    rounds = panel.shape[0] - 1
    k = check_design(design, panel.n_conversations, rounds)
    multi = train_c.size >= 2 * design.folds
    single = panel.n_conversations == 1
    by = "rounds" if single else "discussions"
    main = panel.transitions(train_c) if not single else panel.transitions(before=k)
    if main.sum() <= 0:
        raise ValueError("no transition to fit")
    early, late = panel.transitions(before=k), panel.transitions(after=k)
    fold = _fold_of(train_c, design.folds, k_folds) if multi else None
    keys = dict(zip(("cv", "heldout", "one_step"), jax.random.split(k_scores, 3), strict=True))
    fits: dict[str, ModelFit] = {}
    for m in models:
        say(f"fitting {m.name}")
        est = estimate.fit(m, panel, main)
        lay = estimate.layout(m, panel)
        n_params = estimate.count(lay)
        info = estimate.information(est.mse, est.n_fitted, panel.dof, n_params)
        ivals, clustered = estimate.intervals(m, panel, est, main) if design.intervals else ({}, by)
        fit = ModelFit(m, panel, est.params, est.mse, n_params, info, ivals, clustered)
        if test_c.size:
            fit.scores["heldout"] = _scored(panel, m, est.params, panel.transitions(test_c), main, by, keys["heldout"])
        if multi:
            sq = np.zeros(panel.usable.shape)
            base = {b: np.zeros(panel.usable.shape) for b in BASELINES}
            per_fold = []
            for f in range(design.folds):
                fitted = panel.transitions(train_c[fold != f])
                scored = panel.transitions(train_c[fold == f])
                e = estimate.fit(m, panel, fitted)
                s = estimate.errors(panel.space, estimate.predict(m, panel, e.params), panel.arrays.y[1:])
                b = baseline_errors(panel, fitted)
                sq += s * scored
                for name in BASELINES:
                    base[name] += b[name] * scored
                per_fold.append(1.0 - float((s * scored).sum()) / max(float((b["persistence"] * scored).sum()), 1e-300))
            cv = score(panel, sq, base, panel.transitions(train_c), "discussions", keys["cv"])
            cv["folds"] = design.folds
            cv["fold_skills_vs_persistence"] = per_fold
            fit.scores["cv"] = cv
        if k < rounds and late.sum() > 0:
            e = est if single else estimate.fit(m, panel, early)
            fit.scores["one_step"] = _scored(panel, m, e.params, late, early, by, keys["one_step"])
        fits[m.name] = fit
    if multi:
        skills = {n: f.scores["cv"]["skill_vs_persistence"] for n, f in fits.items()}
        best = most_skilful(skills, {n: f.n_params for n, f in fits.items()})
        selection = f"highest cross-validated skill against persistence over {design.folds} folds of the training discussions"
    else:
        best, selection = _validated(panel, models, fits, main)
    base_main = baseline_errors(panel, main)
    baselines = {}
    if test_c.size:
        w = panel.transitions(test_c)
        baselines["heldout_mse"] = {b: float((base_main[b] * w).sum() / w.sum()) for b in BASELINES}
    split = {"training": int(train_c.size), "heldout": int(test_c.size), "train_transitions": k}
    if not math.isfinite(fits[best].mse):
        raise ValueError(f"the fit of {best} did not converge")
    return Comparison(panel, design, fits, best, selection, split, baselines, train_c, test_c, fold)
