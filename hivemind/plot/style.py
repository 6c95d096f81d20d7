"""The house style: colours, limits, the rc settings, and helpers every figure shares."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from hivemind.engine.manifolds import get_manifold
from hivemind.io.records import mobile_mask

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.


OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]


# Categorical colours for lines on white: Okabe-Ito without black and the pale yellow.
CATEGORY_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00"]


AGENT_CMAP = "viridis"  # perceptually uniform and colour-blind safe


ANCHOR_COLOR = "#D55E00"


PREDICTION_COLOR = "#E69F00"


MAX_AGENTS = 200  # lines drawn per figure


MAX_GRAPH_NODES = 500


MAX_POINTS = 200  # points per trajectory


FLOOR = 1e-12  # distances below this are drawn at it on log axes


RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
}


UNITS = {"sphere": "rad", "hyperbolic": "geodesic units, curvature -1", "euclidean": "state units"}


@contextmanager
def house_style():
    with mpl.rc_context(RC):
        yield


def sample_agents(ds: xr.Dataset, limit: int = MAX_AGENTS) -> np.ndarray:
    """Up to ``limit`` non-anchor agents, the same ones on every call (seeded, sorted)."""
    others = np.flatnonzero(mobile_mask(ds))
    if others.size <= limit:
        return others
    return np.sort(np.random.default_rng(0).choice(others, limit, replace=False))


def thin_indices(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))


def agent_colors(ds: xr.Dataset, agents: np.ndarray):
    d0 = ds.distance_to_anchor.isel(seed=0, step=0).values[agents]
    norm = Normalize(vmin=float(d0.min()), vmax=float(max(d0.max(), d0.min() + 1e-12)))
    cmap = mpl.colormaps[AGENT_CMAP]
    return cmap(norm(d0)), mpl.cm.ScalarMappable(norm=norm, cmap=cmap)


def run_title(ds: xr.Dataset, what: str) -> str:
    symbol = manifold_of(ds).symbol
    return f"{ds.attrs['scenario']}: {what} ({symbol}^{ds.attrs['dim']}, rule {ds.attrs['rule']})"


def manifold_of(ds: xr.Dataset):
    return get_manifold(ds.attrs["manifold"], int(ds.attrs["dim"]))


def in_poincare_disk(ds: xr.Dataset) -> bool:
    """H^2 is drawn in the Poincaré disk; every other space through the log map at the anchor."""
    return ds.attrs["manifold"] == "hyperbolic" and int(ds.attrs["dim"]) == 2


def disk_boundary(ax, label: str | None = None) -> None:
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.5", lw=1, label=label)


def colorbar(fig: Figure, mappable, ax, label="initial distance to anchor") -> None:
    fig.colorbar(mappable, ax=ax, label=label, shrink=0.8)


# A figure cannot show more recorded steps than it has pixels; a long run (read from its
# file as needed) is thinned to this many, evenly spaced, first and last included.
MAX_PLOT_STEPS = 2000


def thin_steps(ds: xr.Dataset, most: int) -> xr.Dataset:
    n = ds.sizes["step"]
    if n <= most:
        return ds
    return ds.isel(step=np.unique(np.linspace(0, n - 1, most).round().astype(int)))


def save_figure(fig: Figure, stem: str | Path, formats=("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
    for path in paths:
        fig.savefig(path)
    return paths
