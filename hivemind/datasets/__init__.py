"""Published datasets that travel with the package, each with its licence and citation
(statsmodels' and seaborn's loaders, offline): ``names()``, ``load(NAME)`` (a pandas
DataFrame), ``path(NAME)`` (the file, for ``hivemind fit``), ``cite(NAME)``.

Wherever a table's path is taken (``hivemind fit``), ``dataset:NAME`` names one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hivemind.errors import InputError

PREFIX = "dataset:"

_BROCKERS = (
    "Brockers, F., Ehrlich, D. and Priesemann, V. (2025). Disentangling Interaction and Bias Effects in "
    "Opinion Dynamics of Large Language Models. Data: github.com/Priesemann-Group/llm_opinion_dynamics, "
    "BSD-3-Clause, Copyright (c) 2025, Priesemann-Group."
)


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # beside this module, with LICENSE and README.md
    file: str
    title: str
    citation: str
    licence: str
    shape: str  # what a row is, and the columns
    suggested: str  # the hivemind fit flags its structure calls for


_TWO_AGENT = "one row per (conversation, round, agent): conversation, round 0..5, agent 0/1, stance -2..2, framing ±1, opinion"
_FLAGS = "--attractor-by stance,framing"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "brockers2025_mixtral",
            "brockers2025",
            "mixtral_8x7b_climate.csv",
            "Two-agent Mixtral 8x7B discussions of climate change, opinions from next-token probabilities (1229 discussions)",
            _BROCKERS,
            "BSD-3-Clause",
            _TWO_AGENT,
            _FLAGS,
        ),
        Dataset(
            "brockers2025_dolphin_mixtral",
            "brockers2025",
            "dolphin_mixtral_climate.csv",
            "Two-agent Dolphin-Mixtral discussions of climate change, opinions from next-token probabilities (1195 discussions)",
            _BROCKERS,
            "BSD-3-Clause",
            _TWO_AGENT,
            _FLAGS,
        ),
    )
}


class UnknownDataset(InputError, ValueError):
    """A name that is not one of ``names()``: one line listing them."""


def names() -> tuple[str, ...]:
    return tuple(DATASETS)


def get(name: str) -> Dataset:
    name = name.removeprefix(PREFIX)
    if name not in DATASETS:
        raise UnknownDataset(f"{PREFIX}{name}: no such dataset; the datasets are {', '.join(DATASETS)} (hivemind datasets list)")
    return DATASETS[name]


def path(name: str) -> Path:
    """The file of dataset ``name`` (with or without the ``dataset:`` prefix), inside the package."""
    d = get(name)
    return Path(str(resources.files(__name__).joinpath(d.folder, d.file)))


def licence_text(name: str) -> str:
    d = get(name)
    return resources.files(__name__).joinpath(d.folder, "LICENSE").read_text()


def cite(name: str) -> str:
    """The citation and licence of dataset ``name``."""
    d = get(name)
    return f"{d.title}\n{d.citation}\nLicence: {d.licence} (the text: hivemind.datasets.licence_text({d.name!r}))"


def load(name: str):
    """Dataset ``name`` as a pandas DataFrame, one row per (conversation, round, agent)."""
    import pandas as pd

    return pd.read_csv(path(name))


def resolve(where: str | Path) -> Path:
    """A table's path, or the file of ``dataset:NAME``."""
    text = str(where)
    return path(text) if text.startswith(PREFIX) else Path(where)
