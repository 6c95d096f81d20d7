"""The one interface every language-model backend implements, and what a generation returns.

Implementations, one module each (as xarray's backends): ``llama`` (llama.cpp in this
process, sequential), ``batched`` (its many-sequence decoder), ``server`` (OpenAI-compatible
servers), ``fake`` (deterministic, for tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hivemind.live.config import Sampling
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


@dataclass(frozen=True)
class ProbeRequest:
    """Ask every sequence of a batch, where its message ended, the tokens of ``question`` (the
    question's turn, without the reply), and read the next-token probabilities of ``marks``."""

    question: tuple[int, ...]
    marks: Spellings


class Backend(Protocol):
    """What every backend does: in-process llama.cpp (``LlamaBackend``, sequential or batched),
    OpenAI-compatible servers (``hivemind.live.backends.server.ServerBackend``) and the ``FakeBackend``.

    Prompts are token lists (a server's "tokens" are characters). ``concurrent`` backends take
    a round's requests at once through ``generate_each``; the others decode with ``generate``
    (one prompt) or ``generate_batch`` (many after one shared prefix). With a ``ProbeRequest``
    every message is followed by the probe's question and its ``Generation.probe`` holds the
    answer tokens' probabilities; ``probe`` reads them after any prompts without generating.
    """

    name: str
    model_sha256: str | None
    n_ctx: int
    concurrent: bool

    def tokenize(self, text: str, bos: bool) -> list[int]: ...

    def chat_wrap(self) -> tuple[str, str]: ...

    def chat_turns(self) -> tuple[str, str] | None: ...

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

    def answer_spellings(self, form: Form, model: str = "") -> Spellings: ...

    def check_probe(self, model: str) -> None:
        """Raise ``ModelError`` in one line if ``model`` cannot be probed here (before round 0)."""
        ...

    def probe(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], marks: Spellings) -> np.ndarray: ...

    def embed(self, text: str) -> np.ndarray: ...

    def close(self) -> None: ...

    def runtime(self) -> dict: ...
