"""Rewrite every generated block of README.md, analysis/README.md and the guide's pages (docs/guide) from its JSON.

A block is ``<!-- NAME:begin ... -->`` ... ``<!-- NAME:end -->``; each NAME is rendered by the
script that writes its JSON (tests/test_documents.py checks the same renderings). Run after
any of those scripts (``make analysis`` does).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# block name -> (script, its rendering function, the JSON it renders)
BLOCKS = {
    "hk_counts": ("analysis/phase_diagram.py", "hk_counts", "figures/phase_diagram.json"),
    "entropy_table": ("analysis/entropy_collapse.py", "table", "figures/entropy_collapse.json"),
    "llm_discussions": ("analysis/llm_discussions.py", "table", "figures/llm_discussions.json"),
    "fit_calibration": ("analysis/fit_calibration.py", "table", "figures/fit_calibration.json"),
    "fit_speed": ("benchmarks/fit_discussions.py", "sentence", "benchmarks/results/fit_discussions.json"),
    "probe_check": ("analysis/live_pairs.py", "check_table", "figures/live_pairs.json"),
    "live_pairs": ("analysis/live_pairs.py", "table", "figures/live_pairs.json"),
    "probe_cost": ("benchmarks/live_probe.py", "sentence", "benchmarks/results/live_probe.json"),
    "live_scale": ("benchmarks/live.py", "scale_table", "benchmarks/results/live_scale.json"),
    "live_spread": ("benchmarks/live_server.py", "spread_sentence", "benchmarks/results/live_spread.json"),
    "live32_probes": ("analysis/live32_probes.py", "table", "figures/live32_probes.json"),
    "live_quickstart": ("analysis/live_quickstart.py", "verdict", "figures/live_quickstart.json"),
    "fused_kernel": ("benchmarks/fused.py", "table", "benchmarks/results/fused.json"),
    "fused_speed": ("benchmarks/fused.py", "summary", "benchmarks/results/fused.json"),
    "sweep_speed": ("benchmarks/sweep.py", "sentence", "benchmarks/results/sweep.json"),
    "bench_sizes": ("benchmarks/run.py", "table", "benchmarks/results/bench.json"),
    "bench_facts": ("benchmarks/run.py", "facts", "benchmarks/results/bench.json"),
    "design_scale": ("benchmarks/design.py", "table", "benchmarks/results/design_scale.json"),
    "design_example": ("analysis/design_example.py", "table", "figures/design_example.json"),
}
DOCUMENTS = ("README.md", "analysis/README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "guide").glob("*.md")))


def render(name: str) -> str:
    path, function, data = BLOCKS[name]
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)(json.loads((ROOT / data).read_text()))


def main() -> None:
    for document in DOCUMENTS:
        path = ROOT / document
        text = path.read_text()
        for name in BLOCKS:
            pattern = rf"(<!-- {name}:begin[^>]*-->\n)(.*?)(<!-- {name}:end -->)"
            if re.search(pattern, text, re.S):
                block = render(name)
                text = re.sub(pattern, lambda m, b=block: m.group(1) + b + m.group(3), text, flags=re.S)
        path.write_text(text)
        print(f"rewrote the generated blocks of {document}")


if __name__ == "__main__":
    main()
