"""The live quickstart's verdict as the guide shows it, from figures/live_quickstart.json (the
summary.json of `make live`; `make readme-figures` copies it there)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def verdict(summary: dict) -> str:
    from hivemind.io.documents import parse_summary
    from hivemind.report.verdict import live

    return "```text\n" + "\n".join(live(parse_summary(summary, "figures/live_quickstart.json"))) + "\n```\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "figures" / "live_quickstart.json"
    print(verdict(json.loads(path.read_text())))
