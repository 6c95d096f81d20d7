"""The live package passes typed records: no transcript record carries a hidden ``_``-prefixed key (a
prompt, a sampling) to be stripped before it is written, and nothing is stripped by prefix."""

from __future__ import annotations

import ast
from pathlib import Path

import hivemind.live

LIVE = Path(hivemind.live.__file__).parent


def test_no_record_key_starts_with_an_underscore():
    found = []
    for path in sorted(LIVE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            keys = []
            if isinstance(node, ast.Dict):
                keys = [k for k in node.keys if k is not None]
            elif isinstance(node, ast.Subscript):
                keys = [node.slice]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith":
                keys = node.args[:1]
            for k in keys:
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.startswith("_"):
                    found.append(f"{path.relative_to(LIVE)}:{node.lineno}: {k.value!r}")
    assert not found, found


def test_the_check_finds_a_hidden_key(tmp_path):
    """The walk above, on a module that has one: it is found (the check can fail)."""
    tree = ast.parse('rec = {"_prefix": [1]}\nrec = {k: v for k, v in rec.items() if not k.startswith("_")}\n')
    hits = [
        n
        for n in ast.walk(tree)
        for k in (n.keys if isinstance(n, ast.Dict) else n.args[:1] if isinstance(n, ast.Call) else [])
        if isinstance(k, ast.Constant) and str(k.value).startswith("_")
    ]
    assert len(hits) == 2
