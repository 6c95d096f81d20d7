"""Per-round measures of a conversation: the paper's hashes, compliance and Jaccard similarity.

Texts are compared after ``normalise`` (Unicode NFC, lower case, whitespace runs
collapsed), so that two agents writing the same words count as duplicates whatever
their spacing. A text's state id is the SHA-256 of its normalised form.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter

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


def round_metrics(texts: list[str], anchor_text: str, rule: Rule) -> dict:
    """The per-round row for the peripheral agents' ``texts``.

    ``duplicate_outputs`` counts agents whose normalised text equals another agent's;
    ``hash_collisions`` counts distinct normalised texts whose state ids coincide
    (expected 0: it checks the hash, as the paper did).
    """
    norm = [normalise(t) for t in texts]
    counts = Counter(norm)
    distinct = list(counts)
    ids = Counter(state_id(t) for t in distinct)
    per_agent_jaccard = [jaccard(t, anchor_text) for t in texts]
    return {
        "distinct_outputs": len(distinct),
        "duplicate_outputs": sum(c for c in counts.values() if c > 1),
        "hash_collisions": sum(c - 1 for c in ids.values() if c > 1),
        "compliance": sum(rule.check(t) for t in texts) / len(texts) if texts else float("nan"),
        "jaccard_to_anchor": sum(per_agent_jaccard) / len(texts) if texts else float("nan"),
        "jaccard_per_agent": per_agent_jaccard,
    }
