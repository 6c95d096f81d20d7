"""Sweep grids: swept keys and their values, and every grid point's scenario.

A grid point is the scenario with ``key=value`` overrides, validated like a file, so a bad
value is a one-line error naming the swept key.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tomli_w

from hivemind.errors import InputError
from hivemind.scenario.keys import KEYS
from hivemind.scenario.parse import TRACED_DYNAMICS, parse_scenario
from hivemind.scenario.reader import Reader, typed
from hivemind.scenario.spec import Scenario, ScenarioError, show

# Keys that are numbers in the compiled program: swept inside one compilation.
BATCHED = re.compile(
    r"^(dynamics\.(step_size|noise|noise_decay|gossip_prob|confidence)|anchor\.coupling|anchors\[\d+\]\.coupling"
    r"|agents\.stubbornness)$"
)


GRID = "--grid "  # the flag a swept key comes from on the command line


class SweepError(InputError, ValueError):
    """A grid that cannot be run: ``str(e)`` is one line that starts with the key it is about.

    ``prefix`` is what the command line puts before it, the flag the key came from
    ("--grid " before a swept key, "--" before "memory"), so that the library's message
    names no flag and the CLI's names the one the user typed.
    """

    def __init__(self, message: str, prefix: str = ""):
        super().__init__(message)
        self.prefix = prefix

    def command_line(self) -> str:
        return self.prefix + str(self)


@dataclass(frozen=True)
class Grid:
    """Swept keys and their values, in order: the Cartesian product is the grid."""

    keys: tuple[str, ...]
    values: tuple[tuple, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    def points(self) -> list[tuple]:
        return list(itertools.product(*self.values))

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in zip(self.keys, self.values, strict=True)}


def parse_values(key: str, spec: str) -> tuple:
    """``lin:A:B:N``, ``log:A:B:N`` or comma-separated values (each read as TOML, else a string)."""
    import tomllib

    spec = spec.strip()
    if spec.startswith(("lin:", "log:")):
        kind, *parts = spec.split(":")
        if len(parts) != 3:
            raise SweepError(f"{key}: a range is {kind}:START:STOP:COUNT, got {spec!r}", GRID)
        try:
            a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise SweepError(f"{key}: a range is {kind}:START:STOP:COUNT with numbers, got {spec!r}", GRID) from None
        if n < 1 or not (math.isfinite(a) and math.isfinite(b)):
            raise SweepError(f"{key}: a range needs finite ends and a count >= 1, got {spec!r}", GRID)
        if kind == "log":
            if a <= 0 or b <= 0:
                raise SweepError(f"{key}: a log range needs ends > 0, got {spec!r}", GRID)
            return tuple(float(v) for v in np.geomspace(a, b, n))
        return tuple(float(v) for v in np.linspace(a, b, n))
    items = [t.strip() for t in spec.split(",")]
    if not spec or any(not t for t in items):
        raise SweepError(f"{key}: expected comma-separated values or a range, got {spec!r}", GRID)
    out = []
    for t in items:
        try:
            out.append(tomllib.loads(f"v = {t}")["v"])
        except tomllib.TOMLDecodeError:
            out.append(t)
    if len(set(map(repr, out))) != len(out):
        raise SweepError(f"{key}: repeats a value, got {spec!r}", GRID)
    return tuple(out)


def make_grid(grid: dict[str, Sequence] | Grid) -> Grid:
    if isinstance(grid, Grid):
        return grid
    if not grid:
        raise SweepError("grid: is empty; give at least one key and its values", "--")
    keys, values = [], []
    for key, vals in grid.items():
        vals = tuple(vals) if isinstance(vals, (list, tuple, np.ndarray)) else (vals,)
        if not vals:
            raise SweepError(f"{key}: no values", GRID)
        keys.append(key)
        values.append(tuple(v.item() if isinstance(v, np.generic) else v for v in vals))
    return Grid(tuple(keys), tuple(values))


def _toml(v) -> str:
    """``v`` as a TOML value, for an override ``key=value``."""
    if isinstance(v, (list, tuple)):  # on one line: tomli-w writes arrays one item per line
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return tomli_w.dumps({"v": v}).split("=", 1)[1].strip()


_DYNAMICS_KEY = re.compile(r"^dynamics\.(" + "|".join(TRACED_DYNAMICS) + r")$")


def _replaced(scenario: Scenario, keys: tuple[str, ...], point: tuple, sets: list[str], seeds) -> Scenario | None:
    """The grid point as ``scenario`` with its traced [dynamics] numbers replaced, checked as
    ``parse_scenario`` checks them; None when a key needs the file read again (the graph,
    the rule, anchors, ...). No graph is rebuilt, no TOML written and re-read."""
    changes = {}
    for key, value in zip(keys, point, strict=True):
        match = _DYNAMICS_KEY.match(key)
        if match is None:
            return None
        number = typed(Reader(scenario.source or "<scenario>", {}, KEYS), key, value, "float")
        problem = TRACED_DYNAMICS[match.group(1)](number)
        if problem:
            raise ScenarioError(scenario.source or "<scenario>", key, f"{problem}, got {show(number)}")
        changes[match.group(1)] = number
    return replace(
        scenario,
        dynamics=replace(scenario.dynamics, **changes),
        run=replace(scenario.run, seeds=tuple(seeds)),
        overrides=(*scenario.overrides, *sets),
    )


def point_scenarios(scenario, grid: Grid, seeds: tuple[int, ...]):
    """Every grid point's scenario, validated like a file (the error names the swept key).

    Points that change only traced numbers are data (``dataclasses.replace``); the others
    are the scenario's text read again with the point's ``key=value`` overrides.
    """
    out = []
    for point in grid.points():
        sets = [f"{k}={_toml(v)}" for k, v in zip(grid.keys, point, strict=True)]
        try:
            s = _replaced(scenario, grid.keys, point, sets, seeds) or parse_scenario(
                scenario.text,
                file=scenario.source or "<scenario>",
                base=Path(scenario.base) if scenario.base else None,
                overrides=(*scenario.overrides, *sets),
                seeds=seeds,
            )
        except ScenarioError as e:
            raise SweepError(str(e)) from None
        out.append(s)
    return out
