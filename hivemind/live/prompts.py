"""Prompt templates: what an agent reads each round, split into a shared prefix and its own suffix.

A template is a ``str.format`` string over named fields. ``{anchor}``, ``{rule}`` and
``{topic}`` are the same for every agent, the others (``{agent}``, ``{persona}``, ``{own}``,
``{neighbours}``, ``{round}``) differ. Everything before the first agent field is the
*shared prefix*: the backend evaluates it once and every agent's prompt continues from
it, so the template should put the instructions and the anchor's message first.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SHARED_FIELDS = ("anchor", "rule", "topic")
AGENT_FIELDS = ("agent", "persona", "own", "neighbours", "round")

# A transcript that the model continues with the agent's next line, written for a base model
# (the default Gemma 3 270M checkpoint has no chat template, and wrapped in Gemma's chat turns
# it writes the instructions back) as much as for an instruction-tuned one. Every line has the
# one form "Name: message": the transcript prompt before it (TRANSCRIPT_PROMPT) set the agent's
# own line apart as "Name (last round): ...", and by round 12 of analysis/live32.toml 22 % of
# the stochastic messages began by echoing "(last round):", a form neighbours then copied.
DEFAULT_PROMPT = (
    "A discussion group. The leader's message never changes, and every member's message must {rule}.\n"
    "Leader: {anchor}\n"
    "\n"
    "{persona}\n"
    "{neighbours}"
    "{agent}: {own}\n"
    "{agent}:"
)
DEFAULT_OPENING = "{persona}\n{agent} states an opinion in one sentence.\n{agent}:"
NEIGHBOUR_LINE = "{name}: {text}\n"
# A discussion without an anchor (live.topic): the published studies' design, agents that read
# only one another. Same line form as DEFAULT_PROMPT.
DISCUSSION_PROMPT = "A discussion about {topic}.\n\n{persona}\n{neighbours}{agent}: {own}\n{agent}:"
DISCUSSION_OPENING = "A discussion about {topic}.\n{persona}\n{agent} states an opinion in one sentence.\n{agent}:"
# An assigned stance (live.stances, -2..2) written into the persona.
STANCE_PROMPT = '{agent} {stance} the statement "{statement}".'
STANCE_FIELDS = ("agent", "stance", "statement", "value")
STANCE_WORDS = {
    -2: "strongly disagrees with",
    -1: "disagrees with",
    0: "neither agrees nor disagrees with",
    1: "agrees with",
    2: "strongly agrees with",
}
# The default prompt until November 2026: for comparison, set live.prompt to it.
TRANSCRIPT_PROMPT = (
    "A discussion group. The leader's message never changes, and every member's message must {rule}.\n"
    "Leader: {anchor}\n"
    "\n"
    "{persona}\n"
    "{neighbours}"
    "{agent} (last round): {own}\n"
    "{agent}:"
)
LINE_FIELDS = ("name", "text")


class TemplateError(ValueError):
    def __init__(self, template: str, message: str):
        super().__init__(message)
        self.template = template
        self.message = message


class PromptTooLong(ValueError):
    """Even with every neighbour message dropped, the prompt and the answer do not fit ``n_ctx``."""


def fields_of(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_template(template: str, required: Sequence[str] = (), known: Sequence[str] = SHARED_FIELDS + AGENT_FIELDS) -> None:
    try:
        names = fields_of(template)
    except ValueError as e:
        raise TemplateError(template, f"is not a valid template: {e} (write literal braces as {{{{ and }}}})") from None
    for name in names:
        if name not in known:
            raise TemplateError(template, f"has an unknown field {{{name}}} (fields: {', '.join(known)})")
    for name in required:
        if name not in names:
            raise TemplateError(template, f"must contain {{{name}}}")


def split_template(template: str) -> tuple[str, str]:
    """(shared part, agent part): the template cut just before its first agent field.

    Both parts are templates again (literal braces stay escaped).
    """
    parts: tuple[list[str], list[str]] = ([], [])
    side = 0
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts[side].append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name in AGENT_FIELDS:
            side = 1
        parts[side].append("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return "".join(parts[0]), "".join(parts[1])


@dataclass(frozen=True)
class Prompt:
    prefix: str  # identical for every agent of a round
    suffix: str
    dropped: int  # neighbour messages left out to fit the context window
    prefix_tokens: tuple[int, ...]
    suffix_tokens: tuple[int, ...]

    @property
    def text(self) -> str:
        return self.prefix + self.suffix

    @property
    def tokens(self) -> list[int]:
        return list(self.prefix_tokens + self.suffix_tokens)


def build_prompt(
    template: str,
    shared: dict,
    agent: dict,
    neighbours: Sequence[tuple[str, str]],
    tokenize: Callable[[str, bool], list[int]],
    budget: int,
    wrap: tuple[str, str] = ("", ""),
    line: str = NEIGHBOUR_LINE,
) -> Prompt:
    """Render ``template`` for one agent within ``budget`` prompt tokens.

    ``neighbours`` are (name, text) pairs, oldest message first: when the prompt is too
    long they are dropped from the front, and ``Prompt.dropped`` says how many.
    ``wrap`` is a chat template's (head, tail) around the whole user message.
    ``tokenize(text, bos)`` is the backend's tokenizer. ``line`` renders one neighbour's
    message from ``{name}`` and ``{text}`` (``live.neighbour_line``).
    """
    head, tail = wrap
    shared_part, agent_part = split_template(template)
    prefix = head + shared_part.format(**shared)
    prefix_tokens = tuple(tokenize(prefix, True))
    for dropped in range(len(neighbours) + 1):
        block = "".join(line.format(name=n, text=t) for n, t in neighbours[dropped:])
        suffix = agent_part.format(**shared, **agent, neighbours=block) + tail
        suffix_tokens = tuple(tokenize(suffix, False))
        if len(prefix_tokens) + len(suffix_tokens) <= budget:
            return Prompt(prefix, suffix, dropped, prefix_tokens, suffix_tokens)
    raise PromptTooLong(
        f"the prompt needs {len(prefix_tokens) + len(suffix_tokens)} tokens without any neighbour message, "
        f"over the {budget} that n_ctx leaves after max_tokens"
    )
