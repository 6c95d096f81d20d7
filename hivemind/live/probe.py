"""Opinion probes: an agent's stance read from its next-token probabilities, as the field reads it.

After each message an agent is asked one fixed question in its own context (the prompt it
read and the message it wrote), and its answer is read without sampling: the probability
of each answer token, renormalised over the answers, gives the expected value on the
scale -2..2 and an entropy (the agent's uncertainty); the share of the whole next-token
distribution that fell on the answers (``mass``) says whether the model understood the
question at all. Studies of LLM opinion dynamics read opinions this way (Brockers, Ehrlich
& Priesemann 2025, whose published discussions ``hivemind fit`` reads).

A question *form* fixes the wording and the answers: a five-point digit scale or yes/no,
asked of the agent's own view or as a judge of its last message. Every answer is counted
under each of its spellings that the model writes as one token ("3" and " 3"), so the
reading does not depend on whether the model would put a space first.

``separation`` runs a form on the embedder's check set (``hivemind.live.geometry``), read
as if the agent had written each sentence, and reports how often a paraphrase of the
anchor scores above a rejection of it: the probe's validity, measured rather than assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hivemind.live.geometry import ANCHOR, CHECK_SET, share_above

# Below this share of (paraphrase, rejection) pairs ordered right, a run marks its probes unreliable.
UNRELIABLE = 0.70
# The goal for a form to count as a working probe of a model.
GOOD = 0.80
# Below this mean mass on the answer tokens the model did not take the question as one.
LOW_MASS = 0.2

DIGITS = ("1", "2", "3", "4", "5")


@dataclass(frozen=True)
class Form:
    """A question and its answers: ``question`` is a template over ``{statement}``."""

    name: str
    question: str
    answers: tuple[str, ...]
    values: tuple[float, ...]  # the scale value of each answer, on -2..2

    def render(self, statement: str) -> str:
        return self.question.format(statement=statement)


FORMS: dict[str, Form] = {
    "own": Form(
        "own",
        'How much do you agree with this statement: "{statement}"? Answer with one digit from 1 to 5, '
        "where 1 means strongly disagree, 3 neither agree nor disagree and 5 strongly agree.",
        DIGITS,
        (-2.0, -1.0, 0.0, 1.0, 2.0),
    ),
    "judge": Form(
        "judge",
        'Does your last message agree with this statement: "{statement}"? Answer with one digit from 1 to 5, '
        "where 1 means it strongly rejects the statement, 3 it takes no side and 5 it strongly supports it.",
        DIGITS,
        (-2.0, -1.0, 0.0, 1.0, 2.0),
    ),
    "own_yes_no": Form(
        "own_yes_no",
        'Do you agree with this statement: "{statement}"? Answer Yes or No.',
        ("Yes", "No"),
        (2.0, -2.0),
    ),
    "judge_yes_no": Form(
        "judge_yes_no",
        'Does your last message agree with this statement: "{statement}"? Answer Yes or No.',
        ("Yes", "No"),
        (2.0, -2.0),
    ),
}
DEFAULT_FORM = "own"


class ProbeError(ValueError):
    """A form cannot be read with a model: ``str(e)`` is one line."""


@dataclass(frozen=True)
class Spellings:
    """The single-token spellings of a form's answers for one tokenizer."""

    tokens: tuple[int, ...]  # token ids, several per answer
    answer: tuple[int, ...]  # the answer each token spells (an index into Form.answers)
    texts: tuple[str, ...]


def by_text(form: Form) -> Spellings:
    """Answers matched by their text (a server lists its top tokens as strings): one entry per answer."""
    return Spellings((), tuple(range(len(form.answers))), form.answers)


def spellings(form: Form, tokenize: Callable[[str, bool], list[int]], model: str = "the model") -> Spellings:
    """Every answer's spellings that ``tokenize`` makes one token: the answer with and without a leading space.

    Raises
    ------
    ProbeError
        If an answer has no single-token spelling (its probability could not be read in one step).
    """
    tokens, answer, texts = [], [], []
    for a, text in enumerate(form.answers):
        found = []
        for spelling in dict.fromkeys((text, " " + text)):
            ids = tokenize(spelling, False)
            # A tokenizer that drops the space gives both spellings one id: count it once.
            if len(ids) == 1 and ids[0] not in tokens and ids[0] not in [t for t, _ in found]:
                found.append((ids[0], spelling))
        if not found:
            raise ProbeError(
                f"live.probe: the answer {text!r} of the {form.name!r} form is not one token for {model}; choose another form"
            )
        for tok, spelling in found:
            tokens.append(tok)
            answer.append(a)
            texts.append(spelling)
    return Spellings(tuple(tokens), tuple(answer), tuple(texts))


@dataclass(frozen=True)
class Reading:
    """One probe's answer: the expected value on -2..2, the entropy (nats) of the answer
    distribution, and the next-token probability that fell on the answers."""

    value: float
    entropy: float
    mass: float

    def to_dict(self) -> dict:
        return {"probe": self.value, "probe_entropy": self.entropy, "probe_mass": self.mass}


def read(probabilities: Sequence[float], answer: Sequence[int], values: Sequence[float]) -> Reading:
    """A ``Reading`` from the next-token probability of every spelling (``answer[k]``: its answer).

    The answers' probabilities are the sums over their spellings; renormalised, they give
    the expected value and the entropy. With no mass at all on the answers (a server that
    listed none of them among its top tokens) the value is NaN.
    """
    p = np.zeros(len(values))
    np.add.at(p, np.asarray(answer, int), np.asarray(probabilities, float))
    mass = float(p.sum())
    if not mass > 0:
        return Reading(float("nan"), float("nan"), 0.0)
    q = p / mass
    nz = q[q > 0]
    return Reading(float(q @ np.asarray(values, float)), float(-(nz * np.log(nz)).sum()), mass)


def softmax_at(logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """The probabilities of ``tokens`` under the softmax of ``logits`` (last axis: the vocabulary)."""
    x = np.asarray(logits, np.float64)
    m = x.max(axis=-1, keepdims=True)
    log_z = m[..., 0] + np.log(np.exp(x - m).sum(axis=-1))
    return np.exp(x[..., list(tokens)] - log_z[..., None])


# ---------------------------------------------------------------------------
# The question in the agent's context


def continuation(reply: str, question: str, turns: tuple[str, str] | None) -> str:
    """What follows the agent's prompt when it is probed: its reply, then the question as a new turn.

    ``turns`` is the chat template's (text between the model's reply and the next user
    message, text after a user message); without a chat template the question is a new
    paragraph ending in "Answer:".
    """
    if turns is None:
        return f"{reply}\n\n{question}\nAnswer:"
    between, tail = turns
    return reply + between + question + tail


# ---------------------------------------------------------------------------
# Validity on the check set


@dataclass(frozen=True)
class ProbeValidity:
    """How a probe scores the check set: the mean value and mass per class, the values per
    sentence, ``negation_auc`` (the share of (paraphrase, rejection) pairs in which the
    paraphrase scores higher: the validity that matters, since an embedder puts rejections in
    the anchor's words next to it), ``agreement_auc`` (paraphrase against another proposal),
    ``topic_auc``, ``signal`` (mean paraphrase minus mean rejection), ``noise`` (None when not
    measured), ``overall_mass`` and ``reliable`` (``negation_auc >= UNRELIABLE`` and the signal
    above twice the noise)."""

    statement: str
    mean: dict[str, float | None]
    mean_mass: dict[str, float]
    values: dict[str, list[float]]
    negation_auc: float
    agreement_auc: float
    topic_auc: float
    signal: float
    noise: float | None
    overall_mass: float
    reliable: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def separation(probe: Callable[[Sequence[str]], list[Reading]], statement: str = ANCHOR, together=None) -> ProbeValidity:
    """How a probe scores the check set: ``probe(sentences)`` reads each as the agent's own message.

    ``together``, when given, reads the same sentences in one batch: the difference to
    ``probe``'s readings (``noise``, the mean absolute difference of the values) is the
    numerical noise of the probe itself (llama.cpp's sums differ with the batch), the floor
    below which no difference between classes means anything.
    """
    classes = list(CHECK_SET)
    sentences = [t for k in classes for t in CHECK_SET[k]]
    readings = probe(sentences)
    by_class: dict[str, list[Reading]] = {k: [] for k in classes}
    for t, r in zip(sentences, readings, strict=True):
        by_class[next(k for k in classes if t in CHECK_SET[k])].append(r)
    values = {k: np.asarray([r.value for r in v]) for k, v in by_class.items()}
    masses = np.asarray([r.mass for r in readings])
    neg = share_above(values["paraphrase"], values["negation"])
    signal = float(np.nanmean(values["paraphrase"]) - np.nanmean(values["negation"]))
    noise = None
    if together is not None:
        again = np.asarray([r.value for r in together(sentences)])
        noise = float(np.nanmean(np.abs(again - np.asarray([r.value for r in readings]))))
    return ProbeValidity(
        statement=statement,
        mean={k: float(np.nanmean(v)) if np.isfinite(v).any() else None for k, v in values.items()},
        mean_mass={k: float(np.mean([r.mass for r in v])) for k, v in by_class.items()},
        values={k: v.tolist() for k, v in values.items()},
        negation_auc=neg,
        agreement_auc=share_above(values["paraphrase"], values["alternative"]),
        topic_auc=share_above(values["paraphrase"], values["topic_only"]),
        signal=signal,
        noise=noise,
        overall_mass=float(masses.mean()),
        reliable=bool(np.isfinite(neg) and neg >= UNRELIABLE and (noise is None or abs(signal) > 2 * noise)),
    )


def describe(model: str, form: str, sep: ProbeValidity) -> str:
    """The one line ``hivemind live`` prints per model before the first round."""
    m = sep.mean

    def f(x):
        return "-" if x is None else f"{x:+.2f}"

    line = (
        f"probe {form!r} of {model} on the check set: paraphrases {f(m['paraphrase'])}, rejections {f(m['negation'])}, "
        f"other proposals {f(m['alternative'])}, unrelated {f(m['unrelated'])} (scale -2..2); a paraphrase scores above "
        f"a rejection in {sep.negation_auc:.0%} of pairs, above another proposal in {sep.agreement_auc:.0%}; "
        f"{sep.overall_mass:.1%} of the next-token mass on the answers"
    )
    if sep.noise is not None:
        line += f"; paraphrase minus rejection {sep.signal:+.2f} against a numerical noise of {sep.noise:.2f}"
    if not sep.reliable:
        line += " (unreliable: this model's probes cannot tell agreement from rejection)"
    elif sep.overall_mass < LOW_MASS:
        line += " (little mass on the answers: the model hardly takes it as a question)"
    return line


# The agent's context for the check set: the quickstart's situation, then the sentence as its reply.
CHECK_CONTEXT = 'A discussion group. The leader says: "{statement}"\nWrite your own opinion in one sentence.'


def check_set_probe(backend, form: Form, model: str = "the model", statement: str = ANCHOR) -> ProbeValidity:
    """``separation`` of ``form`` for ``backend`` (its ``tokenize``, ``chat_wrap``, ``chat_turns``
    and ``probe``): every check-set sentence read as the agent's reply to ``CHECK_CONTEXT``."""
    marks = backend.answer_spellings(form, model)
    head, tail = backend.chat_wrap()
    turns = backend.chat_turns()
    prefix = backend.tokenize(head + CHECK_CONTEXT.format(statement=statement) + tail, True)
    question = form.render(statement)

    def readings(sentences, alone: bool):
        suffixes = [backend.tokenize(continuation(t, question, turns), False) for t in sentences]
        if alone:  # one prompt per call: the reading does not depend on which others share the batch
            probs = np.concatenate([backend.probe(prefix, [s], marks, model) for s in suffixes])
        else:
            probs = backend.probe(prefix, suffixes, marks, model)
        return [read(p, marks.answer, form.values) for p in probs]

    return separation(lambda s: readings(s, True), statement, together=lambda s: readings(s, False))
