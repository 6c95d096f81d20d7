"""llama.cpp in this process: one model for every agent, the shared prefix evaluated once.

``LlamaBackend`` keeps one model for all agents and evaluates the shared prefix once: its KV
cache is kept and every agent's prompt continues from it. With ``batch`` it decodes many
agents at once through ``hivemind.live.backends.batched``, and probes them in the same cache.
Chat templates are Jinja2 code inside the GGUF file, so from whoever made the file: they are
rendered in a sandbox that refuses to reach Python internals.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import numpy as np

from hivemind.live.backends.base import Generation, ProbeRequest, Request, in_batches
from hivemind.live.config import Sampling
from hivemind.live.model import INSTALL_HINT, ModelError
from hivemind.live.packaged import sha256_file
from hivemind.live.probe import Form, Spellings, spellings

# ---------------------------------------------------------------------------
# Chat templates


def _unsafe_access(template: str, bos: str, eos: str) -> str | None:
    """What in ``template`` reaches for Python internals, or None.

    llama-cpp-python renders chat templates in Jinja2's immutable sandbox, which answers
    an attempt on Python internals (``__class__``, ``__globals__``, ...) with an
    undefined value and renders on. A template that tries is hostile or broken either
    way, so it is first rendered in a sandbox that raises instead, and refused.
    """
    from jinja2 import BaseLoader, TemplateError
    from jinja2.exceptions import SecurityError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Strict(ImmutableSandboxedEnvironment):
        def unsafe_undefined(self, obj, attribute):
            raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} object is unsafe")

    def raise_exception(message):
        raise TemplateError(message)

    env = Strict(loader=BaseLoader(), trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    try:
        env.from_string(template).render(
            messages=[{"role": "user", "content": "x"}],
            bos_token=bos,
            eos_token=eos,
            add_generation_prompt=True,
            raise_exception=raise_exception,
        )
    except SecurityError as e:
        return str(e)
    except Exception:  # anything else is for the real renderer to judge (and fall back from)
        return None
    return None


def chat_wrap_of(template: str, bos: str, eos: str, source: Path | str = "the model") -> tuple[str, str]:
    """(head, tail) that a chat template puts around one user message; ("", "") if it cannot say.

    Raises
    ------
    ModelError
        If the template tries to reach Python internals: one line, nothing executed.
    """
    unsafe = _unsafe_access(template, bos, eos)
    if unsafe:
        raise ModelError(
            f"live.model: the chat template in {source} tries to reach Python internals ({unsafe}); "
            'refused. Set live.chat = "none" to run without the template'
        )
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    marker = "\x00HIVEMIND\x00"
    try:
        fmt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        rendered = fmt(messages=[{"role": "user", "content": marker}]).prompt
    except Exception:  # a template we cannot render: fall back to plain text, which any model accepts
        return "", ""
    if marker not in rendered:
        return "", ""
    head, tail = rendered.split(marker, 1)
    # The BOS token comes from tokenize(bos=True); a second, textual one would double it.
    return (head[len(bos) :] if bos and head.startswith(bos) else head), tail


def chat_turns_of(template: str, bos: str, eos: str) -> tuple[str, str] | None:
    """(between, tail): what a chat template writes after the model's reply before the next user
    message, and after that message; None if it cannot say. The probe's question is a new turn."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    a, b, c = "\x00HIVEMIND-A\x00", "\x00HIVEMIND-B\x00", "\x00HIVEMIND-C\x00"
    messages = [{"role": "user", "content": a}, {"role": "assistant", "content": b}, {"role": "user", "content": c}]
    try:
        rendered = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)(
            messages=messages
        ).prompt
    except Exception:
        return None
    if not all(m in rendered for m in (a, b, c)):
        return None
    between = rendered.split(b, 1)[1].split(c, 1)[0]
    return between, rendered.split(c, 1)[1]


# ---------------------------------------------------------------------------
# The backend


class LlamaBackend:
    """One llama-cpp-python model for every agent, plus an embedding context on the same file.

    ``reuse_prefix=False`` recomputes the shared prefix for every message: the baseline
    that ``benchmarks/live.py`` measures the cache against. Results are the same either
    way, because the prefix is always evaluated on its own, in the same batches.
    """

    def __init__(self, path: Path, n_ctx: int, threads: int, chat: str = "auto", reuse_prefix: bool = True, batch: int = 0):
        try:
            import llama_cpp
        except ImportError:
            raise ModelError(f"live mode needs llama-cpp-python: {INSTALL_HINT}") from None
        self._llama_cpp = llama_cpp
        self.path = Path(path)
        self.name = self.path.name
        self.n_ctx = n_ctx
        self.threads = threads
        self.reuse_prefix = reuse_prefix
        self.model_sha256 = sha256_file(self.path)
        self.llm = self._load(embedding=False)
        self._embedder = None
        self._chat = chat
        self.prefix_evaluations = 0
        self.batch = int(batch)  # sequences per batched call; 0: generate() only
        self._decoder = None

    def _load(self, embedding: bool):
        kwargs = dict(
            model_path=str(self.path),
            n_ctx=self.n_ctx,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            seed=0,
            verbose=False,
        )
        if embedding:
            lc = self._llama_cpp
            # One sequence per call, mean-pooled: the whole text must fit one micro-batch.
            kwargs.update(embedding=True, pooling_type=lc.LLAMA_POOLING_TYPE_MEAN, n_batch=self.n_ctx, n_ubatch=self.n_ctx)
        try:
            with quiet_stderr():
                return self._llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelError(f"live.model: llama.cpp cannot load {self.path} (damaged or unsupported GGUF: {reason})") from None

    def tokenize(self, text: str, bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True)

    def _template(self) -> tuple[str, str, str] | None:
        """(chat template, BOS text, EOS text), or None when no template is to be used."""
        template = self.llm.metadata.get("tokenizer.chat_template")
        if self._chat == "none" or not template:
            return None
        bos = self.llm.detokenize([self.llm.token_bos()]).decode("utf-8", "ignore")
        eos = self.llm.detokenize([self.llm.token_eos()]).decode("utf-8", "ignore")
        return template, bos, eos

    def chat_wrap(self) -> tuple[str, str]:
        """The model's chat template around one user message, or nothing for a base model."""
        found = self._template()
        return ("", "") if found is None else chat_wrap_of(*found, self.path)

    def chat_turns(self) -> tuple[str, str] | None:
        """The chat template's text between a reply and the next user turn, and after it (None: no template)."""
        found = self._template()
        if found is None:
            return None
        chat_wrap_of(*found, self.path)  # refuses a template that reaches for Python internals, before rendering it again
        return chat_turns_of(*found)

    def _decoder_of(self):
        """The batch decoder (made on first use): ``live.batch`` sequences, or one for probes of a sequential run."""
        from hivemind.live.backends.batched import BatchDecoder

        if self._decoder is None:
            n_seq = max(self.batch, 1)
            self.check_memory(n_seq)
            try:
                with quiet_stderr():
                    # Every sequence may fill its own window of n_ctx cells (the prompt budget guarantees it).
                    self._decoder = BatchDecoder(self.llm, n_seq * self.n_ctx, n_seq, self.threads)
            except (ValueError, RuntimeError) as e:
                raise ModelError(
                    f"live.batch: llama.cpp cannot make a context for {n_seq} sequences of {self.n_ctx} tokens "
                    f"({e}); lower live.batch or live.n_ctx"
                ) from None
        return self._decoder

    def kv_bytes(self, n_seq: int) -> int:
        """The KV cache of ``n_seq`` sequences of ``n_ctx`` cells: layers x (key + value width of
        the KV heads) x f16, from the GGUF's metadata (the head width where it is not the embedding
        over the heads, as Gemma 3's 256 for 640 / 4). Sliding-window layers are counted in full."""
        meta, lc, model = self.llm.metadata, self._llama_cpp, self.llm.model
        arch = meta.get("general.architecture", "")
        layers, kv_heads = lc.llama_model_n_layer(model), lc.llama_model_n_head_kv(model)
        width = lc.llama_model_n_embd(model) // max(lc.llama_model_n_head(model), 1)
        key = int(meta.get(f"{arch}.attention.key_length", width))
        value = int(meta.get(f"{arch}.attention.value_length", width))
        return n_seq * self.n_ctx * layers * kv_heads * (key + value) * 2

    def check_memory(self, n_seq: int) -> None:
        """Refuse, before llama.cpp allocates it, a KV cache larger than this machine's memory."""
        from hivemind.scenario.graphs import machine_memory

        memory, need = machine_memory(), self.kv_bytes(n_seq)
        if memory is not None and need > memory:
            raise ModelError(
                f"live.batch: {n_seq} agents x live.n_ctx {self.n_ctx} tokens make a KV cache of about "
                f"{need / 2**30:,.1f} GiB: more than this machine's {memory / 2**30:,.0f} GiB"
            )

    def answer_spellings(self, form: Form, model: str = "") -> Spellings:
        return spellings(form, self.tokenize, model or self.name)

    def check_probe(self, model: str) -> None:
        pass  # the logits are at hand in process

    def probe(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], marks: Spellings, model: str = "") -> np.ndarray:
        """(prompts, spellings): the next-token probability of each spelling after every prompt."""
        decoder = self._decoder_of()
        out = []
        for start in range(0, len(suffixes), decoder.n_seq):
            out.append(decoder.prompt_probabilities(prefix, suffixes[start : start + decoder.n_seq], marks.tokens))
        return np.concatenate(out) if out else np.zeros((0, len(marks.tokens)))

    def _ensure_prefix(self, prefix: list[int]) -> bool:
        """Leave exactly ``prefix`` in the KV cache; True if it was there already."""
        llm, n = self.llm, len(prefix)
        cached = self.reuse_prefix and llm.n_tokens >= n and np.array_equal(llm.input_ids[:n], prefix)
        if not cached:
            llm.reset()
            llm.eval(prefix)
            self.prefix_evaluations += 1
        # generate() keeps the longest common prefix of its cache and the prompt; saying the
        # cache holds only the shared prefix makes it drop the previous agent's tokens and
        # evaluate this agent's suffix in one batch, whatever came before.
        llm.n_tokens = n
        return bool(cached)

    def generate(
        self, prefix: Sequence[int], suffix: Sequence[int], sampling: Sampling, seed: int, probe: ProbeRequest | None = None
    ) -> Generation:
        prefix, suffix = list(prefix), list(suffix)
        if not suffix:
            raise ValueError("the agent's part of the prompt is empty")
        t0 = time.perf_counter()
        cached = self._ensure_prefix(prefix)
        greedy = sampling.greedy
        out = self.llm.create_completion(
            prefix + suffix,
            max_tokens=sampling.max_tokens,
            temperature=0.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            top_k=0 if greedy else sampling.top_k,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=seed,
            stop=list(sampling.stop),
        )
        choice, usage = out["choices"][0], out["usage"]
        asked = None
        if probe is not None:
            # The sequential path keeps no cache to continue from: the prompt is evaluated again.
            reply = self.tokenize(choice["text"], False)
            asked = tuple(self.probe(prefix, [suffix + reply + list(probe.question)], probe.marks)[0])
        return Generation(
            text=choice["text"].strip(),
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            prefix_cached=cached,
            finish_reason=str(choice.get("finish_reason")),
            seconds=time.perf_counter() - t0,
            probe=asked,
        )

    def generate_batch(
        self,
        prefix: Sequence[int],
        suffixes: Sequence[Sequence[int]],
        samplings: Sequence[Sampling],
        seeds: Sequence[int],
        probe: ProbeRequest | None = None,
    ) -> list[Generation]:
        """Every suffix after one shared prefix, decoded together (see ``hivemind.live.backends.batched``); with
        ``probe``, each sequence is then asked the question where it stopped, in the same KV cache."""
        if not 1 <= len(suffixes) <= self.batch:
            raise ValueError(f"{len(suffixes)} prompts for a batch of {self.batch}")
        decoder = self._decoder_of()
        asked = None if probe is None else [list(probe.question)] * len(suffixes)
        gens, seconds = decoder.generate(prefix, suffixes, samplings, seeds, asked, probe.marks.tokens if probe else ())
        self.prefix_evaluations += 1
        share = seconds / len(gens)
        return [
            Generation(g.text, g.prompt_tokens, g.completion_tokens, False, g.finish_reason, share, probe=g.probe) for g in gens
        ]

    def generate_each(
        self, requests: Sequence[Request], batch: int = 0, skip: Collection[int] = ()
    ) -> Iterator[tuple[int, Generation]]:
        return in_batches(self, requests, batch, skip)

    def embed(self, text: str) -> np.ndarray:
        if self._embedder is None:
            self._embedder = self._load(embedding=True)
        return np.asarray(self._embedder.embed(text, truncate=True), dtype=np.float64).reshape(-1)

    def runtime(self) -> dict:
        """What the texts depend on besides the model and the seeds: llama.cpp's kernels differ by CPU and build."""
        lc = self._llama_cpp
        try:
            system = lc.llama_print_system_info().decode("utf-8", "replace").strip()
        except (AttributeError, TypeError):
            system = None
        return {
            "backend": "llama.cpp",
            "llama_cpp_python": getattr(lc, "__version__", None),
            "system_info": system,
            "threads": self.threads,
            "n_ctx": self.n_ctx,
            "batch": self.batch,
            "reuse_prefix": self.reuse_prefix,
        }

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        for llm in (self.llm, self._embedder):
            if llm is not None:
                llm.close()
        self._embedder = None


@contextlib.contextmanager
def quiet_stderr():
    """Silence stderr while llama.cpp sets up: C code writes to descriptor 2, and its log
    callback prints to ``sys.stderr`` at a level that ``verbose=False`` still lets through."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
