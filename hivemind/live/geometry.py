"""Does an embedder see stance, or only topic? A small check set around the quickstart's anchor.

Every live measure is a distance between embeddings, so it means "agreement" only if the
embedder puts a paraphrase of the anchor nearer to it than an on-topic disagreement. The
sentences below were written for hivemind around the anchor of ``live_quickstart.toml``
and ``analysis/live32.toml``: paraphrases (agree), disagreements that propose another way
(as the agents of those scenarios start out), disagreements that reject the anchor in its
own words, sentences on the topic that take no side, and unrelated ones.
``separation(embed)`` measures an embedder on them; ``hivemind live`` prints it before
the first round, so a user who brings another embedder sees at once what it can tell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

ANCHOR = "The river is the only road home. Follow the river."

CHECK_SET: dict[str, tuple[str, ...]] = {
    "paraphrase": (
        "We should follow the river to get home.",
        "The way home is along the river, so let us follow it.",
        "Following the river is the only way back home.",
        "Stay with the river; it will lead us home.",
        "Our only road home is the river, and we must follow it.",
        "Keep to the river and it will bring us home.",
        "If we walk beside the river we will reach home.",
        "The river knows the way home; we go where it goes.",
    ),
    # Disagreement by proposing another way, as the agents of the live scenarios start out.
    "alternative": (
        "Let us build a raft and sail across the lake.",
        "I think we should climb the ridge and head east.",
        "The railway line south is the safest way back.",
        "We should cross the mountains to the east.",
        "The forest path is shorter and safer.",
        "We should wait here until the storm passes.",
        "Our best hope is the city lights to the north.",
        "Take the desert road; it is long but it is flat.",
    ),
    # Disagreement by rejecting the anchor in its own words: a known blind spot of embedders.
    "negation": (
        "The river will not take us home; we should leave it.",
        "Following the river is a mistake, it leads away from home.",
        "Forget the river, the old road through the forest is the way home.",
        "We should not follow the river; it floods and the path is lost.",
        "Home lies beyond the mountains, not down the river.",
        "The river is not the road home.",
    ),
    "topic_only": (
        "A river runs through the valley toward the sea.",
        "Rivers carry water from the mountains to the ocean.",
        "The road home was long and dusty.",
        "Fish swim upstream in the river every spring.",
        "Many old towns were built beside a river.",
        "Home is where the family gathers in the evening.",
        "The bridge over the river was painted green last year.",
        "Roads and rivers were drawn in blue and red on the old map.",
    ),
    "unrelated": (
        "Quantum chromodynamics describes the strong interaction between quarks.",
        "The recipe needs two eggs and a cup of flour.",
        "Stock prices fell sharply on Tuesday.",
        "She practised the violin for three hours.",
        "The new phone has a larger battery.",
        "Photosynthesis turns light into chemical energy.",
        "The committee will vote on the budget next month.",
        "Chess players study openings for years.",
    ),
}

# Below this share of (paraphrase, alternative) pairs ordered right, distances mostly measure topic.
WEAK = 0.75


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return v / np.linalg.norm(v)


def _geodesic(u: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(np.linalg.norm(u - a, axis=-1) / 2.0, 0.0, 1.0))


def share_above(high: np.ndarray, low: np.ndarray) -> float:
    """The share of pairs in which ``high`` scores above ``low``, ties counted half (NaN entries left out;
    NaN when a side has none): the pair-ordering measure of the check set, for embedders and probes."""
    high, low = high[np.isfinite(high)], low[np.isfinite(low)]
    if not high.size or not low.size:
        return float("nan")
    return float(np.mean((high[:, None] > low[None, :]) + 0.5 * (high[:, None] == low[None, :])))


@dataclass(frozen=True)
class EmbedderCheck:
    """How an embedder places the check set around the anchor.

    ``median_distance`` (radians, per class), ``distances`` (per class, per sentence),
    ``agreement_auc`` (the share of (paraphrase, alternative) pairs in which the paraphrase
    is nearer the anchor: 1 separates perfectly, 0.5 is chance), ``topic_auc`` and
    ``negation_auc`` (the same against sentences on the topic that take no side, and against
    sentences that reject the anchor in its own words), ``separation`` (median alternative
    minus median paraphrase distance, over median unrelated minus median paraphrase: 0 sees
    no stance, 1 puts other proposals as far as unrelated text) and ``dims``.
    """

    median_distance: dict[str, float]
    distances: dict[str, list[float]]
    agreement_auc: float
    topic_auc: float
    negation_auc: float
    separation: float
    dims: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def separation(embed: Callable[[str], np.ndarray]) -> EmbedderCheck:
    """How ``embed`` places the check set around the anchor (see ``EmbedderCheck``)."""
    anchor = _unit(embed(ANCHOR))
    distances = {k: _geodesic(np.stack([_unit(embed(t)) for t in texts]), anchor) for k, texts in CHECK_SET.items()}
    medians = {k: float(np.median(v)) for k, v in distances.items()}
    return EmbedderCheck(
        median_distance=medians,
        distances={k: v.tolist() for k, v in distances.items()},
        agreement_auc=share_above(distances["alternative"], distances["paraphrase"]),
        topic_auc=share_above(distances["topic_only"], distances["paraphrase"]),
        negation_auc=share_above(distances["negation"], distances["paraphrase"]),
        # Scale-free: embedders differ in how far apart anything lies (Gemma's unrelated
        # sentences sit at 0.8 rad, MiniLM's at 1.6).
        separation=(medians["alternative"] - medians["paraphrase"]) / (medians["unrelated"] - medians["paraphrase"]),
        dims=int(anchor.shape[0]),
    )


def describe(name: str, sep: EmbedderCheck) -> str:
    """The one line ``hivemind live`` prints before the first round."""
    m = sep.median_distance
    line = (
        f"embedder {name} ({sep.dims} dims) on the check set around the quickstart anchor: "
        f"paraphrases {m['paraphrase']:.2f} rad, "
        f"other proposals {m['alternative']:.2f}, rejections {m['negation']:.2f}, topic only {m['topic_only']:.2f}, "
        f"unrelated {m['unrelated']:.2f} (separation {sep.separation:.2f}); a paraphrase is nearer than another proposal "
        f"in {sep.agreement_auc:.0%} of pairs, than a topic-only sentence in {sep.topic_auc:.0%}, "
        f"than a rejection in {sep.negation_auc:.0%}"
    )
    if min(sep.agreement_auc, sep.topic_auc) < WEAK:
        line += " (weak: distances to the anchor here measure topic more than agreement)"
    return line
