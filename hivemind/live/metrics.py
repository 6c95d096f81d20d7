"""Per-round measures of a conversation: the paper's hashes, compliance and Jaccard
similarity, and the population measures of the diversity-collapse literature.

Texts are compared after ``normalise`` (Unicode NFC, lower case, whitespace runs
collapsed), so that two agents writing the same words count as duplicates whatever
their spacing. A text's state id is the SHA-256 of its normalised form.

Population measures of one round: ``distinct_n`` (distinct n-grams over all n-grams of
the round's texts, Li et al. 2016), ``vendi_score`` (the effective number of distinct
messages: exp of the entropy of the eigenvalues of the cosine-similarity matrix over n,
Friedman & Dieng 2023) and ``mean_pairwise_distance`` (the mean great-circle distance
between the round's unit embeddings).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter

import numpy as np

from hivemind.live.compliance import Rule, words


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def state_id(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def jaccard(a: str, b: str) -> float:
    """|A ∩ B| / |A ∪ B| of the word sets; 1 for two texts without words."""
    sa, sb = set(words(a)), set(words(b))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def round_metrics(texts: list[str], anchor_text: str | None, rule: Rule | None) -> dict:
    """The per-round row for the peripheral agents' ``texts``.

    ``duplicate_outputs`` counts agents whose normalised text equals another agent's;
    ``hash_collisions`` counts distinct normalised texts whose state ids coincide
    (expected 0: it checks the hash, as the paper did). Compliance needs a rule and the
    Jaccard similarity an anchor: without them they are left out, not computed against nothing.
    """
    norm = [normalise(t) for t in texts]
    counts = Counter(norm)
    distinct = list(counts)
    ids = Counter(state_id(t) for t in distinct)
    out = {
        "distinct_outputs": len(distinct),
        "duplicate_outputs": sum(c for c in counts.values() if c > 1),
        "hash_collisions": sum(c - 1 for c in ids.values() if c > 1),
    }
    if rule is not None:
        out["compliance"] = sum(rule.check(t) for t in texts) / len(texts) if texts else float("nan")
    if anchor_text is not None:
        per_agent_jaccard = [jaccard(t, anchor_text) for t in texts]
        out["jaccard_to_anchor"] = sum(per_agent_jaccard) / len(texts) if texts else float("nan")
        out["jaccard_per_agent"] = per_agent_jaccard
    out["distinct_2"] = distinct_n(texts, 2)
    return out


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all word n-grams of ``texts`` (n-grams do not cross texts); NaN if there are none."""
    grams = []
    for t in texts:
        w = words(t)
        grams += [tuple(w[k : k + n]) for k in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def vendi_score(vectors: np.ndarray) -> float:
    """exp(-sum lambda log lambda) over the eigenvalues of K/n, K_ij the cosine similarity of rows i and j.

    1 when all rows point the same way, n when they are orthogonal: the effective number
    of distinct messages.
    """
    v = _unit_rows(vectors)
    if v.shape[0] == 0:
        return float("nan")
    lam = np.linalg.eigvalsh(v @ v.T / v.shape[0])
    lam = lam[lam > 1e-12]  # 0 log 0 = 0; rounding leaves tiny negatives
    return float(np.exp(-np.sum(lam * np.log(lam))))


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """The mean great-circle distance 2 asin(|u - v| / 2) over all pairs of rows (as unit vectors); 0 for one row."""
    v = _unit_rows(vectors)
    n = v.shape[0]
    if n < 2:
        return 0.0
    i, j = np.triu_indices(n, k=1)
    chord = np.linalg.norm(v[i] - v[j], axis=1)
    return float(np.mean(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))))
