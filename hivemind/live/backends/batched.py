"""Decoding many agents at once: one llama.cpp context, one sequence per agent.

A round's prompts share a prefix (the anchor's message and the rule) and differ in
each agent's suffix. ``BatchDecoder.generate`` evaluates the prefix once as sequence
0, copies its KV cells to every other sequence (``llama_memory_seq_cp``), evaluates all
suffixes together, and then decodes one token of every unfinished sequence per
``llama_decode``. Each sequence keeps its own sampler chain, seeded with its message's seed.

Every sequence has a KV stream of its own (``kv_unified = False``): a token attends over
its own sequence's cells only, so a step costs the same whatever the number of
sequences beside it, and a round's time grows linearly in the agents. In one unified
cell pool (the former layout, which shares the prefix's cells rather than copying them)
every token's attention spans the cells of all sequences, masked, and a round grows
with the square of the agents (``benchmarks/live.py --scale`` measures both, with the
other levers, on 256 agents).

The cache is cleared before every call, so a call's result depends only on its own
prompts, settings and seeds (and on the CPU and llama.cpp build), not on what was
decoded before: that is what lets a resumed run repeat an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hivemind.live.config import Sampling


@dataclass(frozen=True)
class BatchGeneration:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    probe: tuple[float, ...] | None = None  # next-token probabilities of the probe's tokens, when asked


def _reason(finish: str | None) -> str:
    return "stop" if finish == "eog" else str(finish)


class BatchTooLarge(ValueError):
    """The prompts and their completions do not fit the context: ``str(e)`` says by how much."""


def cells_needed(prefix: int, suffixes: Sequence[int], max_tokens: Sequence[int], unified: bool = False) -> int:
    """KV cells one call needs in each sequence's stream (the longest prompt and completion), or in
    the one pool of a unified cache (the shared prefix once, then every suffix and completion)."""
    ends = [s + m for s, m in zip(suffixes, max_tokens, strict=True)]
    return prefix + (sum(ends) if unified else max(ends, default=0))


class BatchDecoder:
    """A second llama.cpp context on an already loaded model, sized for ``n_ctx`` cells and ``n_seq`` sequences.

    Parameters
    ----------
    llm : a ``llama_cpp.Llama`` (its model and tokenizer are shared, not loaded again).
    n_ctx : KV cells for all sequences together.
    n_seq : the most sequences one call may decode.
    threads : CPU threads.
    n_batch : the most tokens one ``llama_decode`` takes (prompts are cut to this size).
    n_ubatch : the micro-batch llama.cpp computes at once.
    unified : one cell pool for all sequences instead of a stream each (measured slower; kept
        for ``benchmarks/live.py``, which measures both).
    flash : flash attention.
    """

    def __init__(
        self,
        llm,
        n_ctx: int,
        n_seq: int,
        threads: int,
        n_batch: int = 512,
        n_ubatch: int = 512,
        unified: bool = False,
        flash: bool = True,
    ):
        import llama_cpp
        from llama_cpp import _internals

        self._lc = llama_cpp
        self.llm = llm
        self.n_seq = int(n_seq)
        if not 1 <= self.n_seq <= llama_cpp.llama_max_parallel_sequences():
            raise BatchTooLarge(
                f"{n_seq} sequences; llama.cpp decodes at most {llama_cpp.llama_max_parallel_sequences()} at once"
            )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = int(n_ctx)
        params.n_batch = int(n_batch)
        params.n_ubatch = int(min(n_ubatch, n_batch))
        params.n_seq_max = self.n_seq
        params.n_threads = params.n_threads_batch = int(threads)
        params.kv_unified = bool(unified)
        # Measured on 2 cores with 32 sequences: 2.1x the sequential rate with flash attention, 1.55x without.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx.ctx)
        self.unified = bool(unified)
        self.cells = self.n_ctx if self.unified else self.n_ctx // self.n_seq  # what cells_needed is held to
        self.n_batch = int(n_batch)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, self.n_seq)
        self._vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.decode_calls = 0
        # For the benchmark's breakdown: time on prefixes and suffixes, and (sequences, seconds) per generation step.
        self.prompt_seconds = 0.0
        self.steps: list[tuple[int, float]] = []

    # -- pieces --------------------------------------------------------------

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, wants logits) entries."""
        b = self._batch
        for j, (tok, pos, seq, logits) in enumerate(entries):
            b.token[j] = tok
            b.pos[j] = pos
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq
            b.logits[j] = logits
        b.n_tokens = len(entries)
        rc = self._lc.llama_decode(self._ctx.ctx, b)
        self.decode_calls += 1
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} (the KV cache is full or the batch is malformed)")

    def _prompts(self, prefix: list[int], suffixes: list[list[int]]):
        """Evaluate the prefix once and every suffix after it; yields (output index, sequence) as
        each sequence's last prompt token's logits become readable (before the next decode)."""
        lc, ctx = self._lc, self._ctx.ctx
        memory = lc.llama_get_memory(ctx)
        lc.llama_memory_clear(memory, True)
        p = len(prefix)
        for start in range(0, p, self.n_batch):
            self._decode([(t, start + j, 0, False) for j, t in enumerate(prefix[start : start + self.n_batch])])
        for k in range(1, len(suffixes)):
            lc.llama_memory_seq_cp(memory, 0, k, -1, -1)
        # The suffixes, cut into batches of n_batch tokens; each sequence's last token wants logits.
        entries = [(t, p + j, k, j == len(s) - 1) for k, s in enumerate(suffixes) for j, t in enumerate(s)]
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start : start + self.n_batch]
            self._decode(chunk)
            for idx, (_, _, k, wants) in enumerate(chunk):
                if wants:
                    yield idx, k

    def prompt_logits(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]]) -> np.ndarray:
        """(sequences, vocabulary) logits after each prompt, as ``generate`` samples its first tokens from."""
        out = np.empty((len(suffixes), self._n_vocab), np.float32)
        for idx, k in self._prompts([int(t) for t in prefix], [[int(t) for t in s] for s in suffixes]):
            out[k] = self._logits(idx)
        return out

    def prompt_probabilities(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], tokens: Sequence[int]) -> np.ndarray:
        """(sequences, tokens): the next-token probability of each of ``tokens`` after each prompt."""
        from hivemind.live.probe import softmax_at

        need = cells_needed(len(prefix), [len(s) for s in suffixes], [0] * len(suffixes), self.unified)
        if len(suffixes) > self.n_seq or need > self.cells:
            raise BatchTooLarge(f"{len(suffixes)} prompts needing {need} cells for {self.n_seq} sequences of {self.cells} cells")
        out = np.empty((len(suffixes), len(tokens)))
        for idx, k in self._prompts([int(t) for t in prefix], [[int(t) for t in s] for s in suffixes]):
            out[k] = softmax_at(self._logits(idx), tokens)
        return out

    def _logits(self, idx: int) -> np.ndarray:
        """Output ``idx``'s logits of the last decode, as a view (valid until the next decode)."""
        return np.ctypeslib.as_array(self._lc.llama_get_logits_ith(self._ctx.ctx, idx), shape=(self._n_vocab,))

    def _ask(self, p: int, suffixes, tokens, finish, asked, wanted) -> list[tuple[float, ...]]:
        """Append each sequence's question where its message ended (its last sampled token, not yet
        evaluated, first) and read the probabilities of ``wanted`` after it, all sequences together."""
        from hivemind.live.probe import softmax_at

        entries = []
        for k, question in enumerate(asked):
            pending = [] if finish[k] == "eog" else tokens[k][-1:]
            start = p + len(suffixes[k]) + len(tokens[k]) - len(pending)
            seq = [*pending, *question]
            entries += [(t, start + j, k, j == len(seq) - 1) for j, t in enumerate(seq)]
        out: list[tuple[float, ...]] = [()] * len(asked)
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start : start + self.n_batch]
            self._decode(chunk)
            for idx, (_, _, k, last) in enumerate(chunk):
                if last:
                    out[k] = tuple(float(x) for x in softmax_at(self._logits(idx), wanted))
        return out

    def _sampler(self, sampling: Sampling, seed: int):
        """The stochastic chain ``Llama.create_completion`` builds for the same settings (min_p 0, no penalties)."""
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(sampling.top_k))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_typical(1.0, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(sampling.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_min_p(0.0, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(sampling.temperature))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
        return chain

    # -- the call -------------------------------------------------------------

    def generate(
        self,
        prefix: Sequence[int],
        suffixes: Sequence[Sequence[int]],
        samplings: Sequence[Sampling],
        seeds: Sequence[int],
        asked: Sequence[Sequence[int]] | None = None,
        wanted: Sequence[int] = (),
    ) -> tuple[list[BatchGeneration], float]:
        """Decode every suffix after the shared prefix; returns the generations and the seconds spent.

        With ``asked`` (tokens per sequence), each sequence is then asked them where its
        message ended, in the same cache, and its generation carries the next-token
        probabilities of ``wanted`` after them: the opinion probe without evaluating the
        prompt again.

        Raises
        ------
        BatchTooLarge
            If a sequence's prefix, suffix and ``max_tokens`` completion do not fit its
            stream's cells, or there are more suffixes than sequences.
        """
        prefix = [int(t) for t in prefix]
        suffixes = [[int(t) for t in s] for s in suffixes]
        n = len(suffixes)
        if n > self.n_seq:
            raise BatchTooLarge(f"{n} sequences in one call, the context was made for {self.n_seq}")
        if any(not s for s in suffixes):
            raise ValueError("an agent's part of the prompt is empty")
        extra = [len(q) + 1 for q in asked] if asked is not None else [0] * n
        need = cells_needed(
            len(prefix),
            [len(s) for s in suffixes],
            [s.max_tokens + e for s, e in zip(samplings, extra, strict=True)],
            self.unified,
        )
        if need > self.cells:
            raise BatchTooLarge(f"needs {need} KV cells, the context has {self.cells} per sequence")
        lc = self._lc
        t0 = time.perf_counter()
        # Greedy sequences need no chain: ``_take`` takes their argmax directly.
        chains = [None if s.greedy else self._sampler(s, int(seed)) for s, seed in zip(samplings, seeds, strict=True)]
        try:
            tokens: list[list[int]] = [[] for _ in range(n)]
            finish: list[str | None] = [None] * n
            texts = [""] * n
            p = len(prefix)
            for idx, k in self._prompts(prefix, suffixes):
                self._take(chains[k], idx, k, tokens, finish, texts, samplings[k])
            self.prompt_seconds += time.perf_counter() - t0
            while True:
                live = [k for k in range(n) if finish[k] is None]
                if not live:
                    break
                t_step = time.perf_counter()
                self._decode([(tokens[k][-1], p + len(suffixes[k]) + len(tokens[k]) - 1, k, True) for k in live])
                for idx, k in enumerate(live):
                    self._take(chains[k], idx, k, tokens, finish, texts, samplings[k])
                self.steps.append((len(live), time.perf_counter() - t_step))
            probes = self._ask(p, suffixes, tokens, finish, asked, wanted) if asked is not None else [None] * n
        finally:
            for chain in chains:
                if chain is not None:
                    lc.llama_sampler_free(chain)
        seconds = time.perf_counter() - t0
        out = [
            BatchGeneration(texts[k].strip(), p + len(suffixes[k]), len(tokens[k]), _reason(finish[k]), probes[k])
            for k in range(n)
        ]
        return out, seconds

    def _take(self, chain, idx: int, k: int, tokens, finish, texts, sampling: Sampling) -> None:
        """Sample sequence ``k``'s next token from output ``idx`` and decide whether it is done."""
        lc = self._lc
        if sampling.greedy:
            # llama.cpp's greedy sampler copies all 262,144 logits into a candidate array before
            # taking the first largest; argmax over the logits in place picks the same token (0.4 s
            # less of the 9.8 s that two rounds of 32 agents take, measured).
            tok = int(np.argmax(self._logits(idx)))
        else:
            tok = int(lc.llama_sampler_sample(chain, self._ctx.ctx, idx))
        if lc.llama_vocab_is_eog(self._vocab, tok):
            finish[k] = "eog"  # reported as "stop"; the probe needs to know that no token is pending
            return
        tokens[k].append(tok)
        text = self.llm.detokenize(tokens[k]).decode("utf-8", errors="ignore")
        cut = min((i for i in (text.find(s) for s in sampling.stop) if i >= 0), default=-1)
        if cut >= 0:
            texts[k], finish[k] = text[:cut], "stop"
        elif len(tokens[k]) >= sampling.max_tokens:
            texts[k], finish[k] = text, "length"
        else:
            texts[k] = text

    def close(self) -> None:
        if self._batch is not None:
            self._lc.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()
