"""Paths shared by the analysis scripts: they read ../scenarios and write ../figures."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
FIGURES = ROOT / "figures"


def write_numbers(name: str, numbers: dict) -> Path:
    """The numbers behind a figure, next to it, so the README's claims can be checked."""
    path = FIGURES / f"{name}.json"
    path.write_text(json.dumps(numbers, indent=2, default=float) + "\n")
    return path
