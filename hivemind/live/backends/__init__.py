"""The live package's backends behind one interface (``base.Backend``), one module per engine:

- ``llama``: llama.cpp in this process (``LlamaBackend``), sequential or batched
- ``batched``: the decoder that runs many agents as sequences of one llama.cpp context
- ``server``: any OpenAI-compatible server (``ServerBackend``, ``live.backend = "openai"``)
- ``local_server``: llama-cpp-python's own server on 127.0.0.1, started from Python
- ``fake``: a deterministic stand-in (``FakeBackend``) for tests
- ``population``: the backends and the embedder a scenario names (``load_population``)
"""

from hivemind.live.backends.base import Backend, Embedder, Generation, Population, ProbeRequest, Request
from hivemind.live.backends.fake import FakeBackend
from hivemind.live.backends.llama import LlamaBackend, chat_turns_of, chat_wrap_of, quiet_stderr
from hivemind.live.backends.population import load_embedder, load_population

__all__ = [
    "Backend",
    "Embedder",
    "FakeBackend",
    "Generation",
    "LlamaBackend",
    "Population",
    "ProbeRequest",
    "Request",
    "load_embedder",
    "load_population",
    "chat_turns_of",
    "chat_wrap_of",
    "quiet_stderr",
]
