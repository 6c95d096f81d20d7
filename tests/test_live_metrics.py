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
