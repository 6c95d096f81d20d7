"""Figures, one module per kind of result (as xarray's ``plot`` package):

- ``style``: colours, limits, rc settings, ``save_figure``
- ``run``: a run's convergence, states, graph and animation (``plot_run``)
- ``sweep``: lines, heatmaps and bifurcation diagrams of a sweep
- ``analyses``: path independence, entropy collapse, the forecast models
- ``live``: a live run's measures per round, a live sweep
- ``bench``: the benchmark

Every figure uses matplotlib's object-oriented API (``Figure``, no pyplot), so plotting
touches no global state and works without a display. Large runs plot a fixed, seeded
sample of agents; colours always mean the same thing: an agent's initial distance to the anchor.
"""

from hivemind.plot.analyses import discussions_figure, entropy_figure, paths_figure
from hivemind.plot.bench import bench_figure
from hivemind.plot.live import groups_figure, live_figure, live_sweep_figure
from hivemind.plot.run import FIGURES, animation, cluster_labels, convergence, graph, planar, plot_run, states
from hivemind.plot.style import CATEGORY_COLORS, house_style, sample_agents, save_figure, thin_steps
from hivemind.plot.sweep import sweep_figure

__all__ = [
    "CATEGORY_COLORS",
    "FIGURES",
    "animation",
    "bench_figure",
    "cluster_labels",
    "convergence",
    "discussions_figure",
    "entropy_figure",
    "graph",
    "house_style",
    "groups_figure",
    "live_figure",
    "live_sweep_figure",
    "paths_figure",
    "planar",
    "plot_run",
    "sample_agents",
    "save_figure",
    "states",
    "sweep_figure",
    "thin_steps",
]
