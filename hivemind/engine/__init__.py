"""The engine: manifolds, the graph as edge arrays, the drift, update rules, and the
chunked, jitted, vmapped scan that runs them (``simulate``), with its records and checkpoints."""
