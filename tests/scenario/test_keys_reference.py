"""The reference of scenario keys against the parser: every key the parser reads is documented,
and every documented key is accepted by the parser (each parsed with its example)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from hivemind.cli.reference import all_keys, keys_markdown
from hivemind.scenario.parse import ANCHOR_KEYS

ROOT = Path(__file__).resolve().parents[2]
PARSERS = (ROOT / "hivemind" / "scenario" / "parse.py", ROOT / "hivemind" / "live" / "config.py")
DOCUMENTED = {k.name for k in all_keys()}


def keys_the_parser_reads() -> set[str]:
    """Every key read by name in the parsers' source: ``r.get("section", "key", ...)``, the per-agent
    readers ``_per_agent(r, "key", ...)`` / ``_texts(r, "key", ...)``, and the anchor's table."""
    found = {f"anchor.{k}" for k in ANCHOR_KEYS} | {"anchors"}
    for path in PARSERS:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
            if name == "get" and len(args) >= 3 and args[0] is not None and args[1] is not None and args[2] is not None:
                found.add(f"{args[0]}.{args[1]}" if args[0] else args[1])
            elif name in ("_per_agent", "_texts") and len(args) >= 2 and args[1] is not None:
                found.add(f"live.{args[1]}")
    return found


def test_every_key_the_parser_reads_is_in_the_reference():
    read = keys_the_parser_reads()
    assert len(read) > 60  # the scan finds the parsers' reads (it would find nothing if their shape changed)
    missing = sorted(read - DOCUMENTED)
    assert missing == [], f"keys the parser accepts but the reference does not document: {missing}"


def test_the_reference_names_no_key_the_parser_never_reads():
    stale = sorted(DOCUMENTED - keys_the_parser_reads())
    assert stale == [], f"keys documented but never read by the parser: {stale}"


def _load(path: Path, key, extra=()):
    from hivemind import load_scenario

    data = tomllib.loads(path.read_text())
    for c in key.context:
        if c.startswith("drop:"):
            data.pop(c[5:], None)
    copy = path.parent / f".keys_{key.name.replace('.', '_')}.toml"
    copy.write_text(tomli_w.dumps(data))
    try:
        overrides = [c for c in key.context if not c.startswith("drop:")] + [f"{key.name}={key.example}", *extra]
        return load_scenario(copy, overrides)
    finally:
        copy.unlink()


@pytest.mark.parametrize("key", all_keys(), ids=lambda k: k.name)
def test_every_documented_key_is_accepted_with_its_example(key, tmp_path):
    base = "live_quickstart.toml" if key.name.startswith("live.") else "quickstart.toml"
    scenario = _load(ROOT / "scenarios" / base, key)
    assert scenario is not None
    if key.name.startswith("live."):
        assert scenario.live is not None


def test_the_parser_refuses_a_key_that_is_not_in_the_reference(tmp_path):
    from hivemind import ScenarioError, load_scenario

    with pytest.raises(ScenarioError, match="dynamics.not_a_key is not a known key"):
        load_scenario(ROOT / "scenarios" / "quickstart.toml", ["dynamics.not_a_key=1"])


def test_the_generated_page_lists_every_key_once():
    page = keys_markdown()
    rows = re.findall(r"^\| `([^`]+)` \|", page, re.M)
    assert sorted(rows) == sorted(DOCUMENTED) and len(rows) == len(set(rows))
