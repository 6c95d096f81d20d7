"""Scenario + engine + io wired together: ``simulate`` (one scenario, many seeds, chunked, with
checkpoints and records), ``sweep`` (a grid of scenarios as batched runs) and ``manifest``."""
