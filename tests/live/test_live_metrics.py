"""The anchor's rules and the per-round text metrics, against values worked out by hand."""

from __future__ import annotations

import hashlib

import pytest

from hivemind.live.compliance import AllOf, FinalWord, MaxWords, Phrase, Regex, RuleError, parse_rule
from hivemind.live.metrics import jaccard, normalise, round_metrics, state_id


def test_rules_check_what_they_say():
    assert Phrase("the  Anchor is right").check("I think THE anchor\nis right.")
    assert not Phrase("anchor is right").check("the anchor was right")
    assert Regex(r"^\d{3}-\d{4}$").check("555-1234") and not Regex(r"^\d{3}$").check("5555")
    assert FinalWord("amen").check("So be it. Amen!") and not FinalWord("amen").check("amen, so be it")
    assert MaxWords(3).check("one two three") and not MaxWords(3).check("one two three four")
    assert not MaxWords(3).check("  ...  ")  # an empty answer never complies
    both = AllOf((Phrase("yes"), MaxWords(2)))
    assert both.check("yes indeed") and not both.check("yes yes yes")


def test_parse_rule_builds_each_kind_and_lists():
    assert parse_rule({"kind": "phrase", "text": "hello"}) == Phrase("hello")
    assert parse_rule({"kind": "max_words", "n": 5}) == MaxWords(5)
    rule = parse_rule([{"kind": "final_word", "word": "done"}, {"kind": "regex", "pattern": "^A"}])
    assert rule == AllOf((FinalWord("done"), Regex("^A")))


@pytest.mark.parametrize(
    ("value", "key", "fragment"),
    [
        ({"kind": "vibes"}, "live.rule.kind", "must be one of"),
        ({"kind": "regex", "pattern": "(unclosed"}, "live.rule.pattern", "not a valid regular expression"),
        ({"kind": "max_words", "n": 0}, "live.rule.n", ">= 1"),
        ({"kind": "max_words", "n": "5"}, "live.rule.n", "integer"),
        ({"kind": "phrase", "text": "x", "extra": 1}, "live.rule.extra", "is not a key"),
        ({"kind": "phrase", "text": "  "}, "live.rule.text", "empty"),
        ([], "live.rule", "empty list"),
        ([{"kind": "phrase", "text": "a"}, {"kind": "final_word"}], "live.rule[1].word", "string"),
        ("be nice", "live.rule", "must be a table"),
    ],
)
def test_parse_rule_names_the_bad_key(value, key, fragment):
    with pytest.raises(RuleError) as e:
        parse_rule(value)
    assert e.value.key == key and fragment in e.value.message


def test_normalise_state_id_and_jaccard():
    assert normalise("  Hello\tWORLD \n") == "hello world"
    assert state_id("Hello  world") == hashlib.sha256(b"hello world").hexdigest()
    # {the, cat, sat} vs {the, cat, ran}: 2 shared of 4.
    assert jaccard("The cat sat.", "the cat ran") == pytest.approx(2 / 4)
    assert jaccard("", "") == 1.0 and jaccard("a", "") == 0.0


def test_round_metrics_counts_duplicates_compliance_and_jaccard():
    anchor = "Always end with amen"
    texts = ["We agree, amen", "we  AGREE, amen", "No.", "always end with amen"]
    row = round_metrics(texts, anchor, FinalWord("amen"))
    assert row["distinct_outputs"] == 3  # the first two normalise to the same text
    assert row["duplicate_outputs"] == 2
    assert row["hash_collisions"] == 0
    assert row["compliance"] == pytest.approx(3 / 4)
    # Word sets against {always, end, with, amen}: {we, agree, amen} 1/6 twice, {no} 0, equal 1.
    assert row["jaccard_per_agent"] == pytest.approx([1 / 6, 1 / 6, 0.0, 1.0])
    assert row["jaccard_to_anchor"] == pytest.approx((1 / 6 + 1 / 6 + 0 + 1) / 4)


def test_distinct_2_counts_bigrams_within_texts():
    from hivemind.live.metrics import distinct_n

    # Bigrams: (the cat) (cat sat) | (the cat) (cat ran) | none in "hello": 3 distinct of 4.
    assert distinct_n(["The cat sat", "the cat ran", "hello"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b) (b a) (a b)
    assert distinct_n(["one", "two"], 2) != distinct_n(["one", "two"], 2)  # no bigram at all: NaN


def test_vendi_score_is_the_effective_number_of_distinct_embeddings():
    import numpy as np

    from hivemind.live.metrics import vendi_score

    e = np.eye(4)
    assert vendi_score(e) == pytest.approx(4.0)  # orthogonal: four distinct messages
    assert vendi_score(np.tile([[0.0, 3.0, 4.0]], (5, 1))) == pytest.approx(1.0)  # one message, five times
    # Two identical rows and one orthogonal: K/n has eigenvalues 2/3 and 1/3.
    lam = np.array([2 / 3, 1 / 3])
    assert vendi_score(np.array([[1.0, 0], [2.0, 0], [0, 1.0]])) == pytest.approx(np.exp(-np.sum(lam * np.log(lam))))
    # Two unit vectors at angle t: K = [[1, c], [c, 1]] has eigenvalues 1 +- c, over n = 2.
    t = 0.7
    lam = np.array([1 + np.cos(t), 1 - np.cos(t)]) / 2
    v = np.array([[1.0, 0.0], [np.cos(t), np.sin(t)]])
    assert vendi_score(v) == pytest.approx(np.exp(-np.sum(lam * np.log(lam))))


def test_mean_pairwise_distance_is_the_mean_angle():
    import numpy as np

    from hivemind.live.metrics import mean_pairwise_distance

    v = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-1.0, 0.0, 0.0]])  # angles pi/2, pi, pi/2
    assert mean_pairwise_distance(v) == pytest.approx((np.pi / 2 + np.pi + np.pi / 2) / 3)
    assert mean_pairwise_distance(v[:1]) == 0.0
