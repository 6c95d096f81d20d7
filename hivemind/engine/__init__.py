"""The engine, arrays in and arrays out: manifolds, the graph as edge arrays, the drift, update
rules, and the compiled kernel (``kernel.start``/``advance``, a jitted, vmapped scan). It never
sees a ``Scenario``: ``hivemind.runner`` builds its inputs."""
