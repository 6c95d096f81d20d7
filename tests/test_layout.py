"""A lint rule the import contract cannot state: no module reads another module's private names
(``from hivemind.x import _name``, or ``_name`` through a module imported as an alias). What
another module needs is part of its API."""

from __future__ import annotations

import ast
import re
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
    text = "from hivemind.theory.linear import _step\nfrom hivemind.theory import linear as fc\nfc._unpack\nfc.fit\n"
    path = tmp_path / "entropy.py"
    path.write_text(text)
    assert len(private_uses(path, "hivemind.theory.entropy")) == 2


ROOT = PACKAGE.parent
# What a clone is: these files and folders read nothing outside it.
CHECKED = ("README.md", "Makefile", ".ci", "docs", "analysis", "benchmarks", "tests", "hivemind", "scenarios", "pyproject.toml")
RELATIVE = re.compile(r"(?<![\w./])((?:\.\./)+[\w./-]*)")
PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")
ABOVE_ROOT = re.compile(r"\bROOT\.parent\b|\bshared/data\b")


def _files():
    for name in CHECKED:
        p = ROOT / name
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix in (".py", ".md", ".toml", ".txt", ".cfg", "") and "_build" not in f.parts:
                    yield f


def leaves(f: Path, line: str) -> bool:
    """Whether ``line`` of file ``f`` names a path above the repository's root: a relative path
    that resolves outside it, a module's ancestor above it, or the root's parent."""
    if ABOVE_ROOT.search(line):
        return True
    depth = len(f.relative_to(ROOT).parts) - 1  # the file's parents[depth] is the root
    if any(int(n) > depth for n in PARENTS.findall(line)):
        return True
    return any(not (f.parent / rel).resolve().is_relative_to(ROOT) for rel in RELATIVE.findall(line))


def test_nothing_reads_a_path_outside_the_repository():
    """A user's clone has no shared folder beside it: no document, script, test or module may
    name a path that climbs out of the repository."""
    found = []
    for f in _files():
        if f == Path(__file__).resolve():
            continue
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        found += [
            f"{f.relative_to(ROOT)}:{k}: {line.strip()[:100]}" for k, line in enumerate(text.splitlines(), 1) if leaves(f, line)
        ]
    assert not found, "\n".join(found)


def test_the_rule_sees_a_path_out():
    here = ROOT / "analysis" / "x.py"
    assert leaves(here, 'DATA = ROOT.parent / "shared"')
    assert leaves(here, "see ../../shared/data/llm_discussions/a.csv")
    assert leaves(ROOT / "tests" / "io" / "x.py", "Path(__file__).resolve().parents[3]")
    assert not leaves(ROOT / "tests" / "io" / "x.py", "Path(__file__).resolve().parents[2]")
    assert not leaves(ROOT / "docs" / "guide" / "a.md", "![x](../../figures/a.png)")


FITTING = PACKAGE / "theory" / "fitting"
# What only the fit may do: minimise a loss over a model's parameters, or reach into the
# estimator and the step that fitting, forecasting and simulating a fitted model share.
FIT_ONLY_IMPORTS = ("scipy.optimize", "hivemind.theory.fitting.minimize", "hivemind.theory.fitting.estimate",
                    "hivemind.theory.fitting.step", "hivemind.theory.fitting.params")  # fmt: skip
DIFFERENTIATES = ("value_and_grad", "grad", "jacfwd", "jacrev")


def fitting_outside(path: Path) -> list[str]:
    """What in ``path`` fits a model: an optimiser or the fit's internals imported, a loss differentiated."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        hits = [n for n in names if n.startswith(FIT_ONLY_IMPORTS)]
        found += [f"imports {hits[0]}"] if hits else []
        if isinstance(node, ast.Attribute) and node.attr in DIFFERENTIATES and isinstance(node.value, ast.Name):
            found.append(f"differentiates ({node.value.id}.{node.attr})")
    return found


def test_only_theory_fitting_defines_a_fitting_model_or_a_step():
    """One fitting story: outside ``theory/fitting/`` no module minimises over a model's
    parameters, differentiates a loss, or uses the fit's estimator and step. Two other places
    differentiate, neither fitting a model to data: the engine (its rules differentiate the
    energy to move agents) and ``design/`` (it differentiates an objective of the dynamics to
    choose an intervention); neither may use the fit's estimator or minimiser."""
    found = [
        f"{p.relative_to(ROOT)}: {what}"
        for p in sorted(PACKAGE.rglob("*.py"))
        if not p.is_relative_to(FITTING) and not p.is_relative_to(PACKAGE / "engine")
        for what in fitting_outside(p)
        if not (p.is_relative_to(PACKAGE / "design") and what.startswith("differentiates"))
    ]
    assert not found, "\n".join(found)


def test_the_fitting_rule_sees_a_fit(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import jax\nimport scipy.optimize\nfrom hivemind.theory.fitting.step import step\nf = jax.value_and_grad(g)\n"
    )
    assert len(fitting_outside(path)) == 3
    path.write_text("from hivemind.theory.fitting import fit_panel\nx = jax.numpy.sum(y)\n")
    assert fitting_outside(path) == []
