"""The backends of a run as its scenario names them: one llama.cpp backend per distinct GGUF file
(or the servers of ``live.endpoints``), and the embedder, gathered in a ``Population``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hivemind.live.backends.base import Embedder, Population
from hivemind.live.backends.llama import LlamaBackend
from hivemind.live.model import NAMED_MODELS, ModelError, resolve_model
from hivemind.scenario import Scenario


def load_population(scenario: Scenario, say: Callable[[str], None] = print) -> tuple[Population, dict[str, str]]:
    """One llama.cpp backend per distinct model file, and the embedder; (population, path of each model as written).

    Raises
    ------
    ModelError
        With a one-line message naming ``live.model`` or ``live.embedding_model``.
    """
    spec = scenario.live
    base = Path(scenario.source).parent if scenario.source else None
    if spec.backend == "openai":
        return _server_population(spec, base, say)
    by_file: dict[Path, LlamaBackend] = {}
    generators, labels = {}, {}
    n_agents = scenario.arrays.n_nodes - len(scenario.anchors)
    try:
        chat_of_file: dict[Path, tuple[str, str]] = {}
        for written in spec.distinct_models:
            path = resolve_model(written, base, say)
            # One load per file serves every name of it, with one chat setting.
            first = chat_of_file.setdefault(path, (written, spec.chat_of(written)))
            if first[1] != spec.chat_of(written):
                raise ModelError(f"live.chat: {first[0]} and {written} are one file ({path}); give them one chat setting")
            if path not in by_file:
                say(f"model {path} ({spec.n_ctx} tokens of context, {spec.threads} threads)")
                batch = spec.batch_size(n_agents)
                by_file[path] = LlamaBackend(path, spec.n_ctx, spec.threads, spec.chat_of(written), batch=batch)
            generators[written], labels[written] = by_file[path], str(path)
        embedder = load_embedder(spec.embedding_model, base, generators[spec.distinct_models[0]], by_file, spec, say)
        labels["embedding"] = str(embedder.path)
    except BaseException:
        for b in by_file.values():
            b.close()
        raise
    return Population(generators, embedder), labels


def _server_population(spec, base: Path | None, say: Callable[[str], None]) -> tuple[Population, dict[str, str]]:
    """Every model on the servers of ``live.endpoints`` (checked before the first round), and the embedder."""
    from hivemind.live.backends.server import ServerBackend

    server = ServerBackend(spec)
    try:
        server.check(spec.distinct_models)
        for m in spec.distinct_models:
            say(f"model {m} on {', '.join(server.routes[m])} (up to {spec.concurrency} requests in flight per endpoint)")
        labels = {m: " ".join(server.routes[m]) for m in spec.distinct_models}
        if spec.embedding_model in ("server", "self"):
            embedder = server
            labels["embedding"] = f"{server.routes[spec.distinct_models[0]][0]}/embeddings"
        else:
            embedder = load_embedder(spec.embedding_model, base, None, {}, spec, say)
            labels["embedding"] = str(embedder.path)
    except BaseException:
        server.close()
        raise
    return Population(dict.fromkeys(spec.distinct_models, server), embedder), labels


def load_embedder(
    written: str, base: Path | None, first: LlamaBackend | None, by_file: dict, spec, say: Callable[[str], None] = print
) -> Embedder:
    """The backend that embeds every text, as ``live.embedding_model`` names it (see ``hivemind.live.embedders``).

    ``first`` is the first agent's generator ("self"); a GGUF file already loaded for
    generation in ``by_file`` is shared rather than loaded twice.
    """
    from hivemind.live import embedders

    if written == "server":
        raise ModelError(
            'live.embedding_model: "server" embeds on the servers of live.backend = "openai"; this run is in-process'
        )
    if written == "self":
        return first
    if written == embedders.DEFAULT_EMBEDDER:
        say("embedder minilm: all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime")
        return embedders.minilm(spec.threads, say)
    path = Path(written).expanduser()
    if not path.is_absolute() and base is not None and written not in NAMED_MODELS:
        path = base / path
    if path.suffix == ".onnx":
        return embedders.onnx_file(path, spec.threads)
    try:
        path = resolve_model(written, base, say)
    except ModelError as e:
        raise ModelError(str(e).replace("live.model", "live.embedding_model", 1)) from None
    if path not in by_file:
        say(f"embedding model {path}")
        by_file[path] = LlamaBackend(path, spec.n_ctx, spec.threads, spec.chat)
    return by_file[path]
