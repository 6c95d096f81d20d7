"""Figures for every manifold: produced, non-empty, with the labelled axes they should have."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import scenario

from hivemind import simulate
from hivemind.cli import main
from hivemind.plot import convergence, graph, planar, plot_run, sample_agents, states
from hivemind.runner.manifest import save_run

MANIFOLD_CASES = [("sphere", 2), ("sphere", 5), ("hyperbolic", 2), ("hyperbolic", 3), ("euclidean", 3)]


@pytest.fixture(scope="module", params=MANIFOLD_CASES, ids=lambda c: f"{c[0]}{c[1]}")
def run(request, tmp_path_factory):
    kind, dim = request.param
    s = scenario(
        manifold={"kind": kind, "dim": dim},
        graph={"kind": "barabasi_albert", "n": 25, "params": {"m": 2}},
        dynamics={"step_size": 0.1, "steps": 200},
        record={"every": 10},
        run={"seeds": [0, 1]},
    )
    ds = simulate(s)
    out = tmp_path_factory.mktemp(f"{kind}{dim}")
    save_run(out, s, ds)
    return ds, out


def test_convergence_figure_has_log_axes_labels_and_the_predicted_rate(run):
    ds, _ = run
    fig = convergence(ds)
    ax, ax_loss = fig.axes[:2]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step" and ax.get_ylabel().startswith("distance to anchor")
    assert ax_loss.get_ylabel().startswith("global loss") and ax_loss.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean over agents" in labels and "range over 2 seeds" in labels
    assert any(label.startswith("predicted rate") for label in labels)  # gradient rule: theory applies
    assert ds.attrs["scenario"] in ax.get_title()
    # thin lines: one per non-anchor agent, drawn as one LineCollection
    assert len(ax.collections[0].get_segments()) == ds.sizes["agent"] - 1
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)


def test_states_figure_uses_the_right_view(run):
    ds, _ = run
    fig = states(ds)
    ax = fig.axes[0]
    kind, dim = ds.attrs["manifold"], int(ds.attrs["dim"])
    if kind == "sphere" and dim == 2:
        assert ax.name == "3d" and ax.get_zlabel() == "x3"
    elif kind == "hyperbolic" and dim == 2:
        assert ax.get_xlabel().startswith("Poincaré disk")
    else:
        assert ax.get_xlabel() == "PC1 of Log at anchor" and ax.get_ylabel() == "PC2 of Log at anchor"
    assert "anchor" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_planar_views_are_faithful(run):
    ds, _ = run
    agents = sample_agents(ds)
    xy, a_xy, _ = planar(ds, agents)
    assert xy.shape == (ds.sizes["step"], agents.size, 2)
    kind, dim = ds.attrs["manifold"], int(ds.attrs["dim"])
    if kind == "hyperbolic" and dim == 2:
        assert np.all(np.linalg.norm(xy, axis=-1) < 1)  # inside the Poincaré disk
    elif dim == 2 or kind == "euclidean" and dim == 2:
        # a 2-D tangent plane: the projection keeps the full Log, so its norm is the distance
        d = ds.distance_to_anchor.isel(seed=0).values[:, agents]
        np.testing.assert_allclose(np.linalg.norm(xy, axis=-1), d, atol=1e-4)


def test_graph_figure_colours_three_steps(run):
    ds, _ = run
    fig = graph(ds)
    titles = [a.get_title() for a in fig.axes[:3]]
    assert titles == [f"step {int(ds.step[0])}", f"step {int(ds.step[ds.sizes['step'] // 2])}", f"step {int(ds.step[-1])}"]
    assert fig.axes[3].get_ylabel() == "distance to anchor (log scale)"


def test_plot_run_writes_non_empty_files(run):
    ds, out = run
    paths = plot_run(out)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        ["convergence.png", "convergence.pdf", "states.png", "states.pdf", "graph.png", "graph.pdf", "states.gif"]
    )
    for p in paths:
        assert p.parent == out / "figures" and 1000 < p.stat().st_size < 5_000_000
    assert (out / "figures" / "states.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_plot_cli_on_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{tmp_path}: not a hivemind run (no run.nc)"
    assert "Traceback" not in err


def test_large_runs_plot_a_sample(tmp_path):
    s = scenario(graph={"kind": "barabasi_albert", "n": 3000, "params": {"m": 2}}, dynamics={"steps": 20}, record={"every": 10})
    ds = simulate(s)
    agents = sample_agents(ds)
    assert agents.size == 200 and ds.attrs["anchor"] not in agents
    np.testing.assert_array_equal(agents, sample_agents(ds))  # the same sample every time
    fig = graph(ds)
    assert "500 of 3000 nodes" in fig._suptitle.get_text()


def test_long_runs_are_thinned_to_evenly_spaced_steps_first_and_last_kept():
    import xarray as xr

    from hivemind.plot import thin_steps

    ds = xr.Dataset({"d": (("step",), np.arange(5001.0))}, coords={"step": np.arange(0, 50010, 10)})
    thin = thin_steps(ds, 2000)
    steps = thin.step.values
    assert steps.size == 2000 and steps[0] == 0 and steps[-1] == 50000
    gaps = np.diff(steps)
    assert gaps.min() >= 20 and gaps.max() <= 30  # 5001 records in 2000: every 2nd or 3rd
    assert thin_steps(ds.isel(step=slice(0, 100)), 2000).sizes["step"] == 100


@pytest.mark.parametrize(
    "manifold", [{"kind": "sphere", "dim": 2}, {"kind": "hyperbolic", "dim": 2}, {"kind": "sphere", "dim": 4}]
)
def test_a_split_population_gets_every_anchor_marked_and_its_clusters_coloured(manifold):
    from hivemind import parse_scenario
    from hivemind.plot import cluster_labels
    from tests.helpers import scenario_text

    text = scenario_text(anchor=None, manifold=manifold, graph={"kind": "path", "n": 9}, dynamics={"steps": 300})
    ds = simulate(parse_scenario(text + "[[anchors]]\nnode = 0\n[[anchors]]\nnode = 8\n"))
    fig = graph(ds)
    assert len([a for a in fig.axes if a.get_label() != "<colorbar>"]) == 4  # three steps and the clusters
    clusters_ax = fig.axes[3]
    assert "clusters" in clusters_ax.get_title()
    stars = [c for ax in fig.axes[:3] for c in ax.collections if _marker_size(c) == 300]
    assert len(stars) == 3 * 2  # both anchors on every step panel
    labels = cluster_labels(ds)
    mobile = ds.is_anchor.values == 0
    assert len(set(labels[mobile].tolist())) == int(ds.clusters.isel(seed=0, step=-1))  # scipy agrees with the engine
    fig = states(ds)
    assert sum(1 for c in fig.axes[0].collections if _marker_size(c) == 250) == 2


def _marker_size(collection) -> float | None:
    sizes = collection.get_sizes() if hasattr(collection, "get_sizes") else []
    return float(sizes[0]) if len(sizes) else None
