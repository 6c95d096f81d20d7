"""The benchmark's figure: the engine against its alternatives, measured in the same run."""

from __future__ import annotations

from matplotlib.figure import Figure

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
from hivemind.plot.style import (
    CATEGORY_COLORS,
    house_style,
)


def bench_figure(result: dict) -> Figure:
    """Left: seconds per step against agents, per implementation. Right: against edges, with slope 1."""
    rows = result["sizes"]
    series = (
        ("engine_step_s", "hivemind"),
        ("numpy_add_at_step_s", "numpy, np.add.at"),
        ("numpy_sparse_step_s", "numpy, scipy sparse"),
        ("loop_step_s", "per-agent Python loop"),
    )
    with house_style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax_n, ax_e = fig.subplots(1, 2)
        for k, (key, label) in enumerate(series):
            pts = [(r["n"], r[key]) for r in rows if key in r]
            if pts:
                n, t = zip(*pts, strict=True)
                ax_n.loglog(n, t, "o-", color=CATEGORY_COLORS[k], label=label)
        ax_n.set_xlabel("agents N")
        ax_n.set_ylabel("seconds per step")
        ax_n.set_title(f"sphere S^{result['options']['dim']}, scale-free graphs, ~{2 * result['options']['m']} edges/agent")
        ax_n.legend()
        edges = [(r["edges"], r["engine_step_s"], "sizes") for r in rows]
        sweep = result.get("edge_sweep") or {"points": []}
        edges += [(p["edges"], p["engine_step_s"], "sweep") for p in sweep["points"]]
        for kind, marker, label in (("sizes", "o", "hivemind, N varies"), ("sweep", "s", f"hivemind, N = {sweep.get('n', 0):,}")):
            pts = sorted((e, t) for e, t, k in edges if k == kind)
            if pts:
                e, t = zip(*pts, strict=True)
                ax_e.loglog(e, t, marker + "-", color=CATEGORY_COLORS[0 if kind == "sizes" else 1], label=label)
        if edges:
            e0, t0, _ = min(edges)
            e_max = max(e for e, _, _ in edges)
            ax_e.loglog([e0, e_max], [t0, t0 * e_max / e0], ":", color="0.5", label="linear in edges")
        ax_e.set_xlabel("directed edges E")
        ax_e.set_ylabel("seconds per step")
        if "slope" in sweep:
            ax_e.set_title(f"fitted slope {sweep['slope']:.2f} at fixed N")
        ax_e.legend()
    return fig
