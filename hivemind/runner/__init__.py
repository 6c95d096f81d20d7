"""Scenario + engine + io wired together: ``simulate`` (one scenario, many seeds, chunked, with
checkpoints and records), ``rundir.run_in`` (a run into a directory, resumable, as ``hivemind run``
does it), ``sweep`` (a grid of scenarios as batched runs) and ``manifest``."""
