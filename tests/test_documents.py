"""The numbers the README quotes from a JSON file match it: each generated block is rendered
again from its JSON by the script that writes both, and compared (analysis/readme_blocks.py
rewrites them)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def block(name: str, document: str = "README.md") -> str:
    text = (ROOT / document).read_text()
    m = re.search(rf"<!-- {name}:begin[^>]*-->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert m, f"{document} has no {name} block"
    return m.group(1)


def test_the_published_discussions_table_matches_its_json():
    analysis = script("analysis/llm_discussions.py")
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    assert block("llm_discussions") == analysis.table(doc)


def test_analysis_readme_quotes_the_same_tables():
    analysis = script("analysis/llm_discussions.py")
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    assert block("llm_discussions", "analysis/README.md") == analysis.table(doc)
    calibration = script("analysis/fit_calibration.py")
    doc = json.loads((ROOT / "figures" / "fit_calibration.json").read_text())
    assert block("fit_calibration", "analysis/README.md") == calibration.table(doc)


def test_the_claims_around_that_table_hold_in_its_json():
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    for name, d in doc["datasets"].items():
        models = d["models"]
        skill = {m: v["heldout_skill_vs_persistence"] for m, v in models.items()}
        # "decay improves every model", on the held-out discussions
        for base in [m for m in models if not m.endswith("+decay") and m + "+decay" in models]:
            assert skill[base + "+decay"] > skill[base], (name, base)
        # the peer pull alone beats persistence, with its interval above 0
        assert models["peer"]["heldout_interval"][0] > 0, name
        # chosen on training data, and at least as good as the hand-written fits
        assert d["best"] == max(models, key=lambda m: (round(models[m]["cv_skill_vs_persistence"], 4), -models[m]["n_params"]))
        # "who pulls whom by stance beats one coupling for everyone but not the attractors"
        assert skill["peer+decay"] < skill["groups[stance]+decay"] < skill[d["best"]], name
        # "the decay's timescale is identified when the coupling is the only pull: about a round"
        lo, hi = models["peer+decay"]["intervals"]["coupling_timescale"]
        assert 0.5 < lo < models["peer+decay"]["params"]["coupling_timescale"] < hi < 2.0, name
    assert doc["datasets"]["mixtral_8x7b"]["best_heldout"]["skill_vs_persistence"] >= 0.19
    assert doc["datasets"]["dolphin_mixtral"]["best_heldout"]["skill_vs_persistence"] >= 0.6


@pytest.mark.parametrize("name", ["fit_speed"])
def test_the_speed_line_matches_the_benchmark(name):
    bench = script("benchmarks/fit_discussions.py")
    results = json.loads((ROOT / "benchmarks" / "results" / "fit_discussions.json").read_text())
    assert block(name) == bench.sentence(results)
