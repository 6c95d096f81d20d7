"""The live package's backends behind one interface (``base.Backend``), one module per engine:

- ``llama``: llama.cpp in this process (``LlamaBackend``), sequential or batched
- ``batched``: the decoder that runs many agents as sequences of one llama.cpp context
- ``server``: any OpenAI-compatible server (``ServerBackend``, ``live.backend = "openai"``)
- ``local_server``: llama-cpp-python's own server on 127.0.0.1, started from Python
- ``fake``: a deterministic stand-in (``FakeBackend``) for tests
"""

from hivemind.live.backends.base import Backend, Generation, ProbeRequest
from hivemind.live.backends.fake import FakeBackend
from hivemind.live.backends.llama import LlamaBackend, chat_turns_of, chat_wrap_of, quiet_stderr

__all__ = [
    "Backend",
    "FakeBackend",
    "Generation",
    "LlamaBackend",
    "ProbeRequest",
    "chat_turns_of",
    "chat_wrap_of",
    "quiet_stderr",
]
