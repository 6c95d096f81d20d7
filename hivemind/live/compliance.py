"""The rule an anchor imposes on the text of the agents, typed and checkable.

A rule is a small frozen dataclass with ``check(text) -> bool``; a scenario gives it as
a TOML table (``{ kind = "phrase", text = "..." }``) or a list of tables that must all
hold. ``parse_rule`` turns a bad table into a ``RuleError`` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


class RuleError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


class Rule(Protocol):
    def check(self, text: str) -> bool: ...

    def describe(self) -> str: ...


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, apostrophes): what rules and Jaccard count."""
    return re.findall(r"[\w']+", text.lower())


@dataclass(frozen=True)
class Phrase:
    """The text contains ``text``, ignoring case and runs of whitespace."""

    text: str

    def check(self, text: str) -> bool:
        squash = lambda s: " ".join(s.lower().split())  # noqa: E731
        return squash(self.text) in squash(text)

    def describe(self) -> str:
        return f'include the words "{self.text}"'


@dataclass(frozen=True)
class Regex:
    """``re.search(pattern, text)`` finds a match."""

    pattern: str

    def check(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None

    def describe(self) -> str:
        return f"match the pattern {self.pattern}"


@dataclass(frozen=True)
class FinalWord:
    """The last word is ``word`` (case-insensitive; trailing punctuation ignored)."""

    word: str

    def check(self, text: str) -> bool:
        w = words(text)
        return bool(w) and w[-1] == self.word.lower()

    def describe(self) -> str:
        return f'end with the word "{self.word}"'


@dataclass(frozen=True)
class MaxWords:
    """At most ``n`` words, and at least one."""

    n: int

    def check(self, text: str) -> bool:
        return 0 < len(words(text)) <= self.n

    def describe(self) -> str:
        return f"use at most {self.n} words"


@dataclass(frozen=True)
class AllOf:
    rules: tuple

    def check(self, text: str) -> bool:
        return all(r.check(text) for r in self.rules)

    def describe(self) -> str:
        return "; ".join(r.describe() for r in self.rules)


KINDS = {
    "phrase": (Phrase, "text", str),
    "regex": (Regex, "pattern", str),
    "final_word": (FinalWord, "word", str),
    "max_words": (MaxWords, "n", int),
}


def parse_rule(value, key: str = "live.rule") -> Rule:
    """A rule from its TOML table, or a list of tables that must all hold."""
    if isinstance(value, list):
        if not value:
            raise RuleError(key, "must not be an empty list")
        return AllOf(tuple(parse_rule(v, f"{key}[{i}]") for i, v in enumerate(value)))
    if not isinstance(value, dict):
        raise RuleError(key, f'must be a table like {{ kind = "phrase", text = "..." }}, got {value!r}')
    kind = value.get("kind")
    if kind not in KINDS:
        raise RuleError(f"{key}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    cls, field, typ = KINDS[kind]
    extra = sorted(set(value) - {"kind", field})
    if extra:
        raise RuleError(f"{key}.{extra[0]}", f"is not a key of a {kind!r} rule (it takes {field!r})")
    arg = value.get(field)
    if isinstance(arg, bool) or not isinstance(arg, typ):
        raise RuleError(f"{key}.{field}", f"must be a{'n integer' if typ is int else ' string'}, got {arg!r}")
    if typ is str and not arg.strip():
        raise RuleError(f"{key}.{field}", "must not be empty")
    if kind == "regex":
        try:
            re.compile(arg)
        except re.error as e:
            raise RuleError(f"{key}.{field}", f"is not a valid regular expression: {e}") from None
    if kind == "max_words" and arg < 1:
        raise RuleError(f"{key}.{field}", f"must be >= 1, got {arg}")
    return cls(arg)
