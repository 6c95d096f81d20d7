"""Scenario text builders and independent geometry shared by the tests."""

from __future__ import annotations

import numpy as np
import tomli_w

from hivemind.scenario import parse_scenario


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
        elif isinstance(table, list):  # an array of tables, as [[anchors]]
            base[name] = table
        else:
            merged = {**base.get(name, {}), **table}
            base[name] = {k: v for k, v in merged.items() if v is not None}
    return tomli_w.dumps({"name": "test", **base})


def scenario(**sections):
    return parse_scenario(scenario_text(**sections), file="test.toml")


# Prefix of ``python -c`` code for a child that a test stops with SIGINT: Ctrl-C reaches it
# however the tests were started. A shell starts a background job (``make test &``) with
# SIGINT ignored, its children inherit that, and Python then installs no KeyboardInterrupt
# handler. (A ``preexec_fn`` would do it in the forked child, which JAX's threads make unsafe.)
INTERRUPTIBLE = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


# The sphere's Log and Exp in plain numpy (arccos and sinc), independent of the engine's.
def sphere_log(x, y):
    c = np.clip(np.sum(x * y, -1, keepdims=True), -1, 1)
    u = y - c * x
    s = np.linalg.norm(u, axis=-1, keepdims=True)
    return np.where(s > 1e-15, np.arccos(c) * u / np.maximum(s, 1e-300), 0.0)


def sphere_exp(x, v):
    r = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.cos(r) * x + np.sinc(r / np.pi) * v
