"""Messages free of prompt scaffolding: what a small model copies from the prompt, found and cut.

A small chat model sometimes writes the prompt's own labels into its message: a speaker
name ("3: ..."), a template line ("(last round): ...", "Your previous message: ..."),
or the same label again and again. Neighbours copy such a message and every measure moves
with it. ``Scaffold.of(template, names)`` collects what counts as scaffolding for one
prompt template and population: the template's literal lines and labels, and the agents'
names as speaker labels. ``Scaffold.clean`` strips scaffolding from the start of a
message (and surrounding quotes), cuts the message where scaffolding starts again later
(as a stop sequence would), and says what it removed, so that the transcript keeps the raw
text and ``rounds.csv`` counts ``malformed_outputs``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

# Speaker labels a model invents besides the agents' names (recognised at a message's start only).
GENERIC_SPEAKERS = ("leader", "anchor", "you", "me", "agent", "member", "assistant", "user", "model")
# A template line shorter than this is too common a phrase to call an echo ("I think").
MIN_FRAGMENT = 8
_QUOTES = {'"': '"', "“": "”", "'": "'", "«": "»"}


@dataclass(frozen=True)
class Cleaned:
    text: str
    raw: str
    removed: tuple[str, ...]  # what was stripped or cut, in order

    @property
    def malformed(self) -> bool:
        return bool(self.removed)


def _literal_lines(template: str) -> list[str]:
    """The template's literal text, cut at every field and every line break, stripped."""
    pieces = [lit for lit, _, _, _ in string.Formatter().parse(template)]
    return [line.strip() for lit in pieces for line in lit.splitlines() if line.strip()]


@dataclass(frozen=True)
class Scaffold:
    fragments: tuple[str, ...]  # lower-case literal pieces of the templates
    speakers: tuple[str, ...]  # the agents' names, lower case: followed by a colon, they open a transcript line

    @classmethod
    def of(cls, templates: Iterable[str], names: Iterable[str]) -> Scaffold:
        fragments = []
        for template in templates:
            for line in _literal_lines(template):
                # A label ("(last round):", "Your previous message:") is scaffolding however short;
                # a sentence of instructions only when it is long enough to be an echo, not a phrase.
                label = line.rstrip().endswith(":") or "):" in line
                for piece in re.split(r"(?<=:)\s+", line):
                    piece = piece.strip().strip('"“”').strip()
                    if len(piece) >= MIN_FRAGMENT or (label and piece.endswith(":") and len(piece) > 2):
                        fragments.append(piece.lower())
        speakers = {str(n).strip().lower() for n in names if str(n).strip()}
        return cls(tuple(dict.fromkeys(fragments)), tuple(sorted(speakers, key=len, reverse=True)))

    def _label_at_start(self, text: str) -> str | None:
        """The speaker label or template fragment that ``text`` starts with, if any."""
        low = text.lower()
        for f in self.fragments:
            if low.startswith(f):
                return text[: len(f)]
        m = re.match(r"\s*([\w .'-]{1,40}?)\s*(\([^)]{0,40}\))?\s*:\s*", text)
        name = m.group(1).lower() if m else ""
        if m and (name in self.speakers or name in GENERIC_SPEAKERS or re.fullmatch(r"(agent|member|node)?\s*\d+", name)):
            return m.group(0)
        if m and m.group(2):  # "Name (last round):": a parenthesised tag before a colon is a transcript label
            return m.group(0)
        return None

    def _first_inside(self, text: str) -> int | None:
        """Where scaffolding starts again after the first character, if it does."""
        low = text.lower()
        hits = [i for f in self.fragments if (i := low.find(f, 1)) > 0]
        # Later in a message only the agents' own names (or a tagged label) open a line: "me:" or
        # "at 3:00" are prose.
        for m in re.finditer(r"(?:(?<=\s)|(?<=[.!?]))([\w'-]{1,20}(?: \d+)?)\s*(\([^)]{0,40}\))?\s*:(?=\s|$)", text):
            word = m.group(1).lower()
            if m.start(1) > 0 and (word in self.speakers or m.group(2)):
                hits.append(m.start(1))
        return min(hits) if hits else None

    def find(self, text: str) -> bool:
        """Whether ``text`` holds any scaffolding."""
        return self._label_at_start(text.strip()) is not None or self._first_inside(text.strip()) is not None

    def clean(self, text: str) -> Cleaned:
        raw, out, removed = text, text.strip(), []
        while out:
            label = self._label_at_start(out)
            if label is None:
                break
            if not label.rstrip().endswith(":"):  # a line of the instructions, not a label: the whole message echoes the prompt
                removed.append(out)
                out = ""
                break
            removed.append(label.strip())
            out = out[len(label) :].strip()
        cut = self._first_inside(out)
        if cut is not None:
            removed.append(out[cut:].strip())
            out = out[:cut].strip()
        if len(out) >= 2 and out[0] in _QUOTES and out.endswith(_QUOTES[out[0]]) and out.count(out[0]) <= 2:
            out = out[1:-1].strip()  # quoting one's own message is form, not scaffolding
        return Cleaned(out, raw, tuple(removed))
