"""The one interface every language-model backend implements, what it is asked and what it returns.

Implementations, one module each (as xarray's backends): ``llama`` (llama.cpp in this
process, sequential or through ``batched``, its many-sequence decoder), ``server``
(OpenAI-compatible servers), ``fake`` (deterministic, for tests). The loop
(``hivemind.live.conversation``) sees this module only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from hivemind.live.config import LiveSpec, Sampling
from hivemind.live.probe import Form, Spellings


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    prefix_cached: bool  # the shared prefix came from the cache, not from a new evaluation
    finish_reason: str
    seconds: float
    extra: dict | None = None  # what else the transcript should keep (a server's endpoint and reported model)
    probe: tuple[float, ...] | None = None  # next-token probabilities of the probe's answer tokens, when asked
    batch_size: int = 0  # messages decoded together with this one (0: alone, or by a server)
    prefix_tokens: int | None = None  # the shared prefix's tokens (None: a server, which counts its own)


@dataclass(frozen=True)
class ProbeRequest:
    """Ask every sequence of a batch, where its message ended, the tokens of ``question`` (the
    question's turn, without the reply), and read the next-token probabilities of ``marks``."""

    question: tuple[int, ...]
    marks: Spellings


@dataclass(frozen=True)
class Request:
    """One message to write: its model (as ``live.model`` writes it), its prompt as the shared
    ``prefix`` and the agent's ``suffix`` (token ids; a server's "tokens" are characters), how to
    decode, its seed, a label for error lines (``"greedy round 3, agent 7"``) and, when the
    message is to be probed, the question to ask after it."""

    model: str
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    sampling: Sampling
    seed: int
    label: str = "a message"
    probe: ProbeRequest | None = None


class Backend(Protocol):
    """What every backend does: in-process llama.cpp (``LlamaBackend``, sequential or batched),
    OpenAI-compatible servers (``hivemind.live.backends.server.ServerBackend``) and the ``FakeBackend``.

    ``generate_each`` writes a round's messages: in-process backends decode them in batches of
    ``batch`` that share a prefix (0: one at a time), a server keeps them all in flight. With a
    ``Request.probe`` every message is followed by the probe's question and its
    ``Generation.probe`` holds the answer tokens' probabilities; ``probe`` reads them after any
    prompts without generating. ``tests/live/test_backend_conformance.py`` checks every implementation.
    """

    name: str
    model_sha256: str | None
    n_ctx: int

    def tokenize(self, text: str, bos: bool) -> list[int]: ...

    def chat_wrap(self) -> tuple[str, str]: ...

    def chat_turns(self) -> tuple[str, str] | None: ...

    def generate_each(
        self, requests: Sequence[Request], batch: int = 0, skip: Collection[int] = ()
    ) -> Iterator[tuple[int, Generation]]:
        """Write every request whose index is not in ``skip``, yielding ``(index, Generation)`` as
        each is done (in any order). A batch holding a skipped request is still decoded whole,
        so that a resumed round sees the batches, and the numbers, of an uninterrupted one."""
        ...

    def answer_spellings(self, form: Form, model: str = "") -> Spellings: ...

    def check_probe(self, model: str) -> None:
        """Raise ``ModelError`` in one line if ``model`` cannot be probed here (before round 0)."""
        ...

    def probe(
        self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], marks: Spellings, model: str = ""
    ) -> np.ndarray: ...

    def close(self) -> None: ...

    def runtime(self) -> dict: ...


class Embedder(Protocol):
    """What turns a text into a vector: a backend's model, or a sentence embedder of its own
    (``hivemind.live.embedders.OnnxEmbedder``)."""

    name: str
    model_sha256: str | None

    def embed(self, text: str) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass
class Population:
    """The backends of a run: one per distinct generation model (keyed as ``live.model`` writes it)
    and the one that embeds every text, so that distances do not depend on who wrote it."""

    generators: dict[str, Backend]
    embedder: Embedder

    @classmethod
    def of(cls, spec: LiveSpec, backend: Backend | Population) -> Population:
        """``backend`` as it is, or one backend serving every model of ``spec`` and the embeddings."""
        if isinstance(backend, Population):
            return backend
        return cls({m: backend for m in spec.distinct_models}, backend)

    @property
    def first(self) -> Backend:
        return next(iter(self.generators.values()))

    def close(self) -> None:
        """Close every backend once (one may serve several models and the embeddings)."""
        for b in {id(b): b for b in [*self.generators.values(), self.embedder]}.values():
            b.close()


class InProcess(Protocol):
    """A backend that decodes one prompt (``generate``) or many after one prefix (``generate_batch``)."""

    def generate(
        self, prefix: Sequence[int], suffix: Sequence[int], sampling: Sampling, seed: int, probe: ProbeRequest | None = None
    ) -> Generation: ...

    def generate_batch(
        self,
        prefix: Sequence[int],
        suffixes: Sequence[Sequence[int]],
        samplings: Sequence[Sampling],
        seeds: Sequence[int],
        probe: ProbeRequest | None = None,
    ) -> list[Generation]: ...


def in_batches(
    backend: InProcess, requests: Sequence[Request], batch: int, skip: Collection[int] = ()
) -> Iterator[tuple[int, Generation]]:
    """``generate_each`` for in-process backends: the requests of each model and prefix, in the order
    they first appear, in batches of ``batch`` (0: each alone through ``generate``)."""
    skip = set(skip)
    groups: dict[tuple, list[int]] = {}
    for k, req in enumerate(requests):
        groups.setdefault((req.model, req.prefix), []).append(k)
    step = max(batch, 1)
    for ks in groups.values():
        for start in range(0, len(ks), step):
            run = ks[start : start + step]
            if all(k in skip for k in run):
                continue
            mine = [requests[k] for k in run]
            first = mine[0]
            if not batch:
                gens = [backend.generate(first.prefix, first.suffix, first.sampling, first.seed, first.probe)]
            else:
                gens = backend.generate_batch(
                    first.prefix, [r.suffix for r in mine], [r.sampling for r in mine], [r.seed for r in mine], first.probe
                )
            for k, gen in zip(run, gens, strict=True):
                if k not in skip:
                    yield k, replace(gen, batch_size=len(run) if batch else 0, prefix_tokens=len(first.prefix))
