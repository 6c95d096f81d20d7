"""Every model fitted to a panel of discussions, scored, and one chosen honestly.

The design (``Design``): a share of the discussions (``test_share``, drawn with the seed) is
held out; the models are fitted on the others (``Split``). Three scores, each against the
baselines:

- ``cv``: k-fold cross-validation over whole training discussions (each fold's every round
  forecast by the model fitted on the other folds);
- ``one_step``: later rounds of the training discussions: their first ``train`` transitions
  fitted, the rest forecast;
- ``heldout``: what was held out, by the chosen model alone: the held-out discussions, every
  round (one conversation: its rounds after the ``train`` fitted ones), by the model fitted on
  all training data. Models are compared on ``cv`` (or ``validation``), never on this.

The model called ``best`` is chosen on training data alone: the highest cross-validated skill
against persistence within the training discussions, or, with too few discussions for folds
(one conversation), the highest skill on later training rounds of a fit to the earlier ones.
Nothing held out enters a fit, a start, a baseline or the choice. A model the training data
cannot carry (``identify``) is refused with its reason rather than fitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import numpy as np

from hivemind.theory.fitting import estimate
from hivemind.theory.fitting.identify import refusal
from hivemind.theory.fitting.models import BASELINES, KIND_COLUMN, Model, defaults
from hivemind.theory.fitting.panel import Panel
from hivemind.theory.fitting.results import ModelFit
from hivemind.theory.fitting.scores import baseline_errors, score

SCHEMA_VERSION = 2  # of fit.json; the schema is fit.schema.json beside this module
# Two models whose cross-validated skills agree to this many digits are one: the smaller wins.
TIE_DIGITS = 4


@dataclass(frozen=True)
class Design:
    folds: int = 5
    test_share: float = 0.5
    train: int | None = None  # transitions of each discussion fitted for one_step (default: half)
    seed: int = 0
    intervals: bool = True
    level: float = 0.9  # of the parameters' intervals


@dataclass(frozen=True)
class Split:
    """Which data each score may read: the training and held-out discussions (indices), each
    training discussion's fold, and the transitions of each discussion fitted for ``one_step``."""

    training: np.ndarray
    heldout: np.ndarray
    fold: np.ndarray | None  # None: too few training discussions for folds
    train_transitions: int
    single: bool  # one conversation: held out by rounds, not discussions

    def main(self, panel: Panel) -> np.ndarray:
        """The transitions every model is fitted to (T - 1, N)."""
        if self.single:
            return panel.transitions(before=self.train_transitions)
        return panel.transitions(self.training)

    def heldout_weights(self, panel: Panel) -> np.ndarray | None:
        """The transitions held out (T - 1, N), or None when nothing is."""
        if self.single:
            w = panel.transitions(after=self.train_transitions)
        elif self.heldout.size:
            w = panel.transitions(self.heldout)
        else:
            return None
        return w if w.sum() > 0 else None

    def to_json(self, panel: Panel) -> dict:
        names = panel.conversations
        out = {
            "training_conversations": int(self.training.size),
            "heldout_conversations": int(self.heldout.size),
            "heldout": [names[i] for i in self.heldout],
        }
        if self.fold is not None:
            out["fold_of"] = {names[i]: int(f) for i, f in zip(self.training, self.fold, strict=True)}
        if self.single:
            out["heldout_from_round"] = self.train_transitions
        return out


@dataclass
class Comparison:
    panel: Panel
    design: Design
    split: Split
    fits: dict[str, ModelFit]
    refused: dict[str, str]  # model name: why the training data cannot carry it
    best: str
    selection: str
    baselines: dict
    about: dict = field(default_factory=dict)  # where the data came from: file, transform

    @property
    def training(self) -> np.ndarray:
        return self.split.training

    @property
    def heldout(self) -> np.ndarray:
        return self.split.heldout

    @property
    def fold(self) -> np.ndarray | None:
        return self.split.fold

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
                "tie_kinds": list(p.kinds) if p.kinds else None,
                "weighted_ties": p.weighted,
                **self.about,
            },
            "design": {
                "folds": self.design.folds,
                "test_share": self.design.test_share,
                "train_transitions": self.split.train_transitions,
                "seed": self.design.seed,
                **self.split.to_json(p),
                "selection": self.selection,
                "interval_level": self.design.level,
                "intervals": "parameters: cluster-robust sandwich over the clusters named per model; "
                "skills: percentile bootstrap over discussions (rounds for one conversation), 1000 resamples",
            },
            "baselines": self.baselines,
            "models": {name: f.to_json() for name, f in self.fits.items()}
            | {name: {"refused": why} for name, why in self.refused.items()},
            "best": self.best,
        }
        out["best_heldout"] = self.fits[self.best].scores.get("heldout")
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


def _keys(seed: int):
    """The seed's three keys: the held-out draw, the folds, the scores' resamples."""
    return jax.random.split(jax.random.key(seed), 3)


def split(panel: Panel, design: Design) -> Split:
    """The ``Split`` of ``panel`` by ``design`` (drawn from ``design.seed``: the same split for
    the same data and seed, whatever models are fitted)."""
    k_split, k_folds, _ = _keys(design.seed)
    train_c, test_c = _split(panel, design, k_split)
    k = check_design(design, panel.n_conversations, panel.shape[0] - 1)
    fold = _fold_of(train_c, design.folds, k_folds) if train_c.size >= 2 * design.folds else None
    return Split(train_c, test_c, fold, k, panel.n_conversations == 1)


def refusals(models, panel: Panel, s: Split) -> dict[str, str]:
    """Each model of ``models`` that the training data of ``s`` cannot carry, with the reason."""
    main = s.main(panel)
    out = {}
    for m in models:
        why = refusal(m, panel, main, estimate.count(estimate.layout(m, panel)))
        if why is not None:
            out[m.name] = why
    return out


def check_fittable(models, panel: Panel, s: Split) -> dict[str, str]:
    """``refusals``, raising ``ValueError`` (one line) when every model is refused."""
    refused = refusals(models, panel, s)
    if len(refused) == len(models):
        reasons = "; ".join(f"{name}: {why}" for name, why in list(refused.items())[:4])
        more = f" (and {len(refused) - 4} more)" if len(refused) > 4 else ""
        raise ValueError(f"no model can be fitted to these data: {reasons}{more}")
    return refused


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


def check_models(models, anchor: bool, group_column: str | None, kinds: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` for a model the data cannot carry: an anchor model without an anchor,
    a model per column whose column is not the data's groups, a coupling per kind of tie for
    ties of one kind."""
    for m in models:
        if m.base == "anchor" and not anchor:
            raise ValueError(f"model {m.name!r} needs an anchor, and the data has none")
        if m.base == "edges":
            if len(kinds) < 2:
                raise ValueError(f"model {m.name!r} needs ties of two or more kinds (a {KIND_COLUMN} column in --edges)")
        elif m.by and m.by != group_column:
            raise ValueError(f"model {m.name!r}: the data's groups come from {group_column!r} (--attractor-by), not {m.by!r}")


def default_models(panel: Panel) -> tuple[Model, ...]:
    """The models fitted to ``panel`` when none are named: ``models.defaults`` for its anchor,
    its groups' column and its kinds of tie."""
    return defaults(panel.has_anchor, panel.group_column, len(panel.kinds) > 1)


def _cross_validated(panel: Panel, m: Model, s: Split, folds: int, key) -> dict:
    """``m``'s cross-validated score over the folds of the training discussions."""
    sq = np.zeros(panel.usable.shape)
    base = {b: np.zeros(panel.usable.shape) for b in BASELINES}
    per_fold = []
    for f in range(folds):
        fitted = panel.transitions(s.training[s.fold != f])
        scored = panel.transitions(s.training[s.fold == f])
        e = estimate.fit(m, panel, fitted)
        err = estimate.errors(panel.space, estimate.predict(m, panel, e.params), panel.arrays.y[1:])
        b = baseline_errors(panel, fitted)
        sq += err * scored
        for name in BASELINES:
            base[name] += b[name] * scored
        per_fold.append(1.0 - float((err * scored).sum()) / max(float((b["persistence"] * scored).sum()), 1e-300))
    cv = score(panel, sq, base, panel.transitions(s.training), "discussions", key)
    cv["folds"] = folds
    cv["fold_skills_vs_persistence"] = per_fold
    return cv


def fit_panel(panel: Panel, models: tuple[Model, ...] | None = None, design: Design = Design(), say=None) -> Comparison:
    """Every model of ``models`` (default: ``models.defaults``) fitted to ``panel`` and scored
    by ``design``; see the module's docstring. Raises ``ValueError`` (one line) for a design or
    models the data cannot carry, and when every model is refused."""
    say = say or (lambda _: None)
    models = models or default_models(panel)
    check_models(models, panel.has_anchor, panel.group_column, panel.kinds)
    s = split(panel, design)
    main = s.main(panel)
    if main.sum() <= 0:
        raise ValueError("no transition to fit")
    refused = check_fittable(models, panel, s)
    k, by = s.train_transitions, "rounds" if s.single else "discussions"
    # Later rounds of the training discussions only: nothing held out enters this score either.
    early, late = panel.transitions(s.training, before=k), panel.transitions(s.training, after=k)
    keys = dict(zip(("cv", "heldout", "one_step"), jax.random.split(_keys(design.seed)[2], 3), strict=True))
    fits: dict[str, ModelFit] = {}
    for m in models:
        if m.name in refused:
            say(f"refused {m.name}: {refused[m.name]}")
            continue
        say(f"fitting {m.name}")
        est = estimate.fit(m, panel, main)
        n_params = estimate.count(estimate.layout(m, panel))
        info = estimate.information(est.mse, est.n_fitted, panel.dof, n_params)
        u = estimate.intervals(m, panel, est, main, design.level) if design.intervals else estimate.Uncertainty({}, {}, by)
        fit = ModelFit(m, panel, est.params, est.mse, n_params, info, u.intervals, u.clustered_by, bse=u.bse)
        if s.fold is not None:
            fit.scores["cv"] = _cross_validated(panel, m, s, design.folds, keys["cv"])
        if not s.single and k < panel.shape[0] - 1 and late.sum() > 0 and early.sum() > 0:
            e = estimate.fit(m, panel, early)
            fit.scores["one_step"] = _scored(panel, m, e.params, late, early, by, keys["one_step"])
        fits[m.name] = fit
    if s.fold is not None:
        skills = {n: f.scores["cv"]["skill_vs_persistence"] for n, f in fits.items()}
        best = most_skilful(skills, {n: f.n_params for n, f in fits.items()})
        selection = f"highest cross-validated skill against persistence over {design.folds} folds of the training discussions"
    else:
        best, selection = _validated(panel, [m for m in models if m.name in fits], fits, main)
    if not math.isfinite(fits[best].mse):
        raise ValueError(f"the fit of {best} did not converge")
    base_main = baseline_errors(panel, main)
    baselines = {}
    held = s.heldout_weights(panel)
    if held is not None:
        # The chosen model alone meets the held-out data: its skill there is reported once.
        fits[best].scores["heldout"] = _scored(panel, fits[best].model, fits[best].params, held, main, by, keys["heldout"])
        baselines["heldout_mse"] = {b: float((base_main[b] * held).sum() / held.sum()) for b in BASELINES}
    return Comparison(panel, design, s, fits, refused, best, selection, baselines)
