"""Scenario text builders shared by the tests."""

from __future__ import annotations

import json

from hivemind.scenario import parse_scenario


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def scenario_text(**sections) -> str:
    """TOML for a small scenario; ``sections`` override or extend the defaults below."""
    base = {
        "manifold": {"kind": "sphere", "dim": 2},
        "graph": {"kind": "cycle", "n": 6},
        "anchor": {"node": 0, "state": "random"},
        "init": {"kind": "cap", "spread": 1.0},
        "dynamics": {"rule": "gradient", "step_size": 0.1, "steps": 100},
        "record": {"every": 10},
        "run": {},
    }
    for name, table in sections.items():
        if table is None:
            base.pop(name, None)
        else:
            merged = {**base.get(name, {}), **table}
            base[name] = {k: v for k, v in merged.items() if v is not None}
    lines = ['name = "test"']
    for name, table in base.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def scenario(**sections):
    return parse_scenario(scenario_text(**sections), file="test.toml")
