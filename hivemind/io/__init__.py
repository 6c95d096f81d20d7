"""Files in and out: scenario TOML, graph files, run directories (``run.nc``, ``manifest.json``), locks."""
