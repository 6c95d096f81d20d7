"""Regenerate every claim: run each entry of analysis/manifest.toml in order, then the README's
generated blocks (analysis/readme_blocks.py). ``make analysis`` runs all; ``--only`` picks entries
by a word of their command (``--only live_pairs,live32_probes``); ``--list`` prints the plan.

    .venv/bin/python analysis/run_all.py [--only WORDS] [--list]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "analysis" / "manifest.toml"


def entries() -> list[dict]:
    return tomllib.loads(MANIFEST.read_text())["script"]


def command(entry: dict) -> list[str]:
    """A script runs with this interpreter; a make target with make."""
    words = shlex.split(entry["run"])
    return words if words[0] == "make" else [sys.executable, *words]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated words; entries whose command contains one")
    p.add_argument("--list", action="store_true", help="print the plan and stop")
    args = p.parse_args()
    words = [w for w in args.only.split(",") if w]
    chosen = [e for e in entries() if not words or any(w in e["run"] for w in words)]
    if not chosen:
        raise SystemExit(f"analysis/manifest.toml: no entry's command contains any of {words}")
    for e in chosen:
        print(f"{e['run']:<40} ~{e['minutes']:>3} min -> {', '.join(e['outputs'])}", flush=True)
    if args.list:
        return 0
    for e in chosen:
        subprocess.run(command(e), cwd=ROOT, check=True)
    subprocess.run([sys.executable, "analysis/readme_blocks.py"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
