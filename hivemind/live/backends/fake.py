"""A deterministic stand-in for a model, so that the protocol and the metrics are tested in milliseconds."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence

import numpy as np

from hivemind.live.backends.base import Generation, ProbeRequest, Request, in_batches
from hivemind.live.config import Sampling
from hivemind.live.probe import Form, Spellings, softmax_at, spellings

_WORD = re.compile(r"[\w']+|[^\w\s]|\n")


class FakeBackend:
    """A deterministic stand-in for a model: it echoes the commonest words of its prompt.

    Tokens are words (ids from their SHA-256, so equal words get equal ids in any run).
    Greedy decoding writes the prompt's ``max_tokens`` most frequent words, stochastic
    decoding draws them in proportion to their counts with a generator seeded by the
    message's seed. Since every prompt holds the anchor's message, the agents drift
    toward its words, as a model would. Embeddings are hashed bags of words.
    ``respond(prompt_text, seed)`` overrides what it writes (to test faults).
    """

    name = "fake"
    model_sha256 = "0" * 64

    def __init__(
        self,
        n_ctx: int = 2048,
        dim: int = 32,
        respond: Callable[[str, int], str] | None = None,
        logits: Callable[[str], dict[str, float]] | None = None,
    ):
        self.n_ctx = n_ctx
        self.dim = dim
        self.respond = respond
        # The probe's next-token logits by token text for a prompt; every other token of the
        # vocabulary together has logit 0 (one "other" entry). By default all answers tie with it.
        self.logits = logits or (lambda prompt: {})
        self.probed: list[str] = []
        self._words: dict[int, str] = {}
        self.prefix_evaluations = 0
        self._cached_prefix: tuple[int, ...] | None = None
        self.prompts: list[str] = []
        self.batches: list[int] = []  # the size of every generate_batch call

    def _id(self, word: str) -> int:
        i = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
        self._words[i] = word
        return i

    def tokenize(self, text: str, bos: bool) -> list[int]:
        return ([1] if bos else []) + [self._id(w) for w in _WORD.findall(text)]

    def chat_wrap(self) -> tuple[str, str]:
        return "", ""

    def chat_turns(self) -> tuple[str, str] | None:
        return None

    def answer_spellings(self, form: Form, model: str = "") -> Spellings:
        return spellings(form, self.tokenize, model or self.name)

    def check_probe(self, model: str) -> None:
        pass  # the logits are at hand in process

    def _text(self, tokens: Sequence[int]) -> str:
        return " ".join(self._words[t] for t in tokens if t in self._words)

    def probe(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], marks: Spellings, model: str = "") -> np.ndarray:
        out = []
        for suffix in suffixes:
            prompt = self._text(list(prefix) + list(suffix))
            self.probed.append(prompt)
            table = dict(self.logits(prompt))
            words = [self._words[t] for t in marks.tokens]
            logits = np.asarray([table.get(w, 0.0) for w in words] + [v for k, v in table.items() if k not in words] + [0.0])
            out.append(softmax_at(logits, range(len(words))))
        return np.asarray(out).reshape(len(suffixes), len(marks.tokens))

    def generate(
        self, prefix: Sequence[int], suffix: Sequence[int], sampling: Sampling, seed: int, probe: ProbeRequest | None = None
    ) -> Generation:
        if not suffix:
            raise ValueError("the agent's part of the prompt is empty")
        cached = self._cached_prefix == tuple(prefix)
        if not cached:
            self.prefix_evaluations += 1
            self._cached_prefix = tuple(prefix)
        words = [self._words[t] for t in list(prefix) + list(suffix) if t in self._words]
        prompt = " ".join(words)
        self.prompts.append(prompt)
        if self.respond is not None:
            text = self.respond(prompt, seed)
        else:
            counts = Counter(w.lower() for w in words if w.isalnum() and len(w) > 2)
            ranked = sorted(counts, key=lambda w: (-counts[w], hashlib.sha256(w.encode()).hexdigest()))
            n = min(sampling.max_tokens, len(ranked))
            if sampling.greedy:
                chosen = ranked[:n]
            else:
                rng = np.random.default_rng(seed)
                p = np.array([counts[w] for w in ranked], float) ** (1.0 / sampling.temperature)
                chosen = list(rng.choice(ranked, size=n, replace=False, p=p / p.sum())) if n else []
            text = " ".join(chosen)
        asked = None
        if probe is not None:
            asked = tuple(self.probe(prefix, [[*suffix, *self.tokenize(text, False), *probe.question]], probe.marks)[0])
        return Generation(text.strip(), len(prefix) + len(suffix), len(text.split()), cached, "stop", 0.0, probe=asked)

    def generate_batch(self, prefix, suffixes, samplings, seeds, probe: ProbeRequest | None = None) -> list[Generation]:
        """Each prompt as ``generate`` writes it, except that a stochastic message's draw depends on the
        batch's size too, as a real batch's logits depend on its composition: a resume that decoded a
        round in other batches than the uninterrupted run would show."""
        self.batches.append(len(suffixes))
        return [
            self.generate(prefix, s, sampling, seed if sampling.greedy else seed + 7919 * len(suffixes), probe)
            for s, sampling, seed in zip(suffixes, samplings, seeds, strict=True)
        ]

    def generate_each(
        self, requests: Sequence[Request], batch: int = 0, skip: Collection[int] = ()
    ) -> Iterator[tuple[int, Generation]]:
        return in_batches(self, requests, batch, skip)

    def embed(self, text: str) -> np.ndarray:
        v = np.full(self.dim, 0.05)  # an offset, so that no text embeds to the zero vector
        for w in re.findall(r"[\w']+", text.lower()):
            v[int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little") % self.dim] += 1.0
        return v

    def runtime(self) -> dict:
        return {"backend": "fake"}

    def close(self) -> None:
        pass
