"""The reference of scenario keys against the parser: every key the parser reads is documented,
and every documented key is accepted by the parser (each parsed with its example)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from hivemind.cli.reference import all_keys, keys_markdown

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = {k.name for k in all_keys()}


def test_the_parser_reads_declared_keys_only():
    """Every read goes through a declaration: reading an undeclared key is refused at once (so
    the declarations are every key the parser can read, by construction)."""
    from hivemind.scenario import Reader
    from hivemind.scenario.keys import KEYS

    r = Reader("x.toml", {"graph": {"kind": "path_graph", "undeclared": 1}}, KEYS)
    assert r.read("graph.kind") == "path_graph"
    with pytest.raises(KeyError, match="graph.undeclared is read but not declared"):
        r.get("graph", "undeclared", "int")


def test_every_declared_default_is_the_one_the_reference_shows():
    """Where a key has a default value, the reference's default is that value as TOML writes it."""
    shown = {}
    for k in all_keys():
        if k.value is ... or k.value is None:
            continue
        value = list(k.value) if isinstance(k.value, tuple) else k.value
        if isinstance(value, bool):
            toml = "true" if value else "false"
        elif isinstance(value, (str, list)):
            toml = json.dumps(value)
        else:
            toml = "{}" if value == {} else str(value)
        if not k.default.startswith(toml):
            shown[k.name] = (k.default, toml)
    assert shown == {}


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
