"""Models of discussions fitted to data: opinions in R^d or on the sphere, many discussions at
once, scored one round ahead against persistence, copy-the-neighbours and the mean.

One story, in one module per job: ``params`` names every parameter (constraint, shape,
meaning); ``models`` names the models by their mechanisms; ``step`` is the one round that
fitting, forecasting and simulating share; ``panel`` holds the data; ``estimate`` fits and
gives intervals; ``scores`` measures; ``results`` is the fitted model as an object;
``identify`` refuses what the data cannot carry; ``compare`` fits every model, scores them
and chooses one on training data alone; ``data`` reads tables into panels and fits them;
``describe`` writes the results as text.
"""

from hivemind.theory.fitting.compare import (
    SCHEMA_VERSION,
    Comparison,
    Design,
    Split,
    check_design,
    check_fittable,
    check_models,
    fit_panel,
    most_skilful,
    refusals,
    split,
)
from hivemind.theory.fitting.models import BASELINES, Model, defaults, parse
from hivemind.theory.fitting.panel import Panel, make_panel
from hivemind.theory.fitting.params import TABLE
from hivemind.theory.fitting.results import ModelFit

__all__ = [
    "BASELINES",
    "SCHEMA_VERSION",
    "TABLE",
    "Comparison",
    "Design",
    "Split",
    "Model",
    "ModelFit",
    "Panel",
    "check_design",
    "check_fittable",
    "check_models",
    "defaults",
    "fit_panel",
    "make_panel",
    "most_skilful",
    "parse",
    "refusals",
    "split",
]
