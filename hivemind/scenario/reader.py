"""Reading typed keys from a TOML table: every problem is a ``ScenarioError`` naming the key.

``hivemind.live`` reads its ``[live]`` section with the same reader, so its errors look the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hivemind.scenario.spec import ScenarioError, show


class Reader:
    """Reads declared keys from a TOML table, remembering which ones were used.

    ``keys`` maps ``section.key`` to its declaration (``hivemind.scenario.keys.Key``: kind,
    default, check); ``read`` takes all three from it, and reading a key that is not declared
    is a programming error, so the declarations are every key the parser can read.
    """

    def __init__(self, file: str, data: dict, keys: dict[str, Any]):
        self.file = file
        self.data = data
        self.keys = keys
        self.used: dict[str, set] = {}

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.file, key, message)

    def table(self, section: str) -> dict:
        value = self.data.get(section, {})
        if not isinstance(value, dict):
            raise self.error(section, f"must be a table ([{section}]), got {show(value)}")
        self.used.setdefault(section, set())
        return value

    def read(self, name: str, default: Any = ..., *, check=None) -> Any:
        """The value of declared key ``name`` (``section.key``), typed and checked as declared;
        ``default`` and ``check`` replace the declared ones where the parser knows better (a
        default that depends on other keys, a bound that depends on the manifold)."""
        k = self.keys[name]
        return self.get(k.section, k.key, k.kind, k.value if default is ... else default, check=check or k.check)

    def given(self, name: str) -> bool:
        """Whether declared key ``name`` is in the file (without reading it)."""
        k = self.keys[name]
        table = self.data.get(k.section, {}) if k.section else self.data
        return isinstance(table, dict) and k.key in table

    def get(self, section: str, key: str, kind: str, default: Any = ..., *, check=None) -> Any:
        path = f"{section}.{key}" if section else key
        if path not in self.keys:
            raise KeyError(f"{path} is read but not declared")  # a bug: declare it with the others
        table = self.table(section) if section else self.data
        self.used.setdefault(section, set()).add(key)
        if key not in table:
            if default is ...:
                raise self.error(path, "is required")
            return default
        value = typed(self, path, table[key], kind)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(path, f"{problem}, got {show(value)}")
        return value

    def check_top_level(self, sections: tuple[str, ...], keys: tuple[str, ...]) -> None:
        """Before reading anything: "[grpah]" should say so, not "graph.kind is required"."""
        for key, value in self.data.items():
            if key not in sections and key not in keys:
                what = "section" if isinstance(value, dict) else "key"
                raise self.error(key, f"is not a known {what} (sections: {', '.join(sections)})")

    def finish(self, sections: tuple[str, ...]) -> None:
        """After reading: any key inside a section that no ``get`` asked for is unknown."""
        for section in sections:
            value = self.data.get(section)
            if isinstance(value, dict):
                unknown = sorted(set(value) - self.used.get(section, set()))
                if unknown:
                    raise self.error(f"{section}.{unknown[0]}", "is not a known key")


def typed(reader: Reader, path: str, value: Any, kind: str) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise reader.error(path, f"must be an integer, got {show(value)}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise reader.error(path, f"must be a number, got {show(value)}")
        if not math.isfinite(value):
            raise reader.error(path, f"must be finite, got {value}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise reader.error(path, f"must be a string, got {show(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise reader.error(path, f"must be true or false, got {show(value)}")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise reader.error(path, f"must be a table, got {show(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise reader.error(path, f"must be a list, got {show(value)}")
        return value
    return value  # "any"


def positive(v):
    return None if v > 0 else "must be > 0"


def nonnegative(v):
    return None if v >= 0 else "must be >= 0"


def at_least(lo):
    return lambda v: None if v >= lo else f"must be >= {lo}"


def one_of(options):
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def numeric_matrix(reader: Reader, path: str, value: Any, rows: int | None, cols: int) -> np.ndarray:
    if not isinstance(value, list) or any(not isinstance(r, list) for r in value):
        raise reader.error(path, f"must be a list of rows of {cols} numbers, got {show(value)}")
    if rows is not None and len(value) != rows:
        raise reader.error(path, f"must have {rows} rows (one per node), got {len(value)}")
    for k, row in enumerate(value):
        if len(row) != cols:
            raise reader.error(path, f"row {k} must have {cols} numbers (ambient coordinates), got {len(row)}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise reader.error(path, f"row {k} must hold finite numbers, got {show(v)}")
    return np.asarray(value, dtype=np.float64)
