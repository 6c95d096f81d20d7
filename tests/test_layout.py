"""A lint rule the import contract cannot state: no module reads another module's private names
(``from hivemind.x import _name``, or ``_name`` through a module imported as an alias). What
another module needs is part of its API."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hivemind"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_uses(path: Path, own: str | None = None) -> list[str]:
    tree = ast.parse(path.read_text())
    own = own or module_name(path)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hivemind"):
            for a in node.names:
                target = f"{node.module}.{a.name}"
                if a.name.startswith("_") and not a.name.startswith("__") and node.module != own:
                    found.append(f"{own}: from {node.module} import {a.name}")
                aliases[a.asname or a.name] = target
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("hivemind"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != own
        ):
            found.append(f"{own}: {node.value.id}.{node.attr} ({aliases[node.value.id]})")
    return found


def test_no_module_reads_another_modules_private_names():
    found = [use for path in sorted(PACKAGE.rglob("*.py")) for use in private_uses(path)]
    assert not found, "\n".join(found)


def test_the_rule_catches_what_it_should(tmp_path):
    text = "from hivemind.theory.forecast import _step\nfrom hivemind.theory import forecast as fc\nfc._unpack\nfc.fit\n"
    path = tmp_path / "groups.py"
    path.write_text(text)
    assert len(private_uses(path, "hivemind.theory.groups")) == 2
