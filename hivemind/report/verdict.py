"""The verdict: what a person wants first from each kind of output folder, in a few lines.

Each function reads what the folder's own files hold (``manifest.json``, ``sweep.nc``,
``summary.json``, ``fit.json``) and returns lines; nothing is computed here that the run did
not already measure, except spreads over the unit that varies (seeds, rounds).
"""

from __future__ import annotations

import numpy as np

from hivemind.io.documents import FitDocument, LiveSummary, Manifest


def _g(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _span(values, spec: str = ".3g") -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size < 2:
        return ""
    return f" [{v.min():{spec}}, {v.max():{spec}}]"


def run(manifest: Manifest, final_by_seed: list[float] | None = None) -> list[str]:
    """A simulated run: did the hivemind form, how fast against the theory, and how it split."""
    return _run(manifest, final_by_seed) + _design(manifest.design)


def _design(d: dict | None) -> list[str]:
    """The line of a scenario that ``hivemind design`` wrote: its objective on this run against the design's value."""
    if not d:
        return []
    if d.get("measured") is None:
        return [f"  design: {d['objective']} not measured: {d.get('how')}"]
    line = f"  design: {d['objective']} {d['measured']:.6g} on this run ({d.get('how')})"
    if d.get("designed") is not None:
        line += f"; hivemind design found {d['designed']:.6g} (relative difference {d['relative_difference']:.2g})"
    return [line]


def _run(manifest: Manifest, final_by_seed: list[float] | None = None) -> list[str]:
    s, seeds = manifest.summary, manifest.seeds or (0,)
    if s is None:
        return ["verdict: the run recorded no step"]
    if s.final_distance_mean is None:
        # Friedkin-Johnsen without an anchor: nothing to collapse into; how far the opinions spread.
        return [
            f"verdict: no anchor (every agent stubborn): {s.agents} agents after {s.final_step} steps, mean pairwise "
            f"distance {s.final_dispersion:.4g}"
            + (
                ""
                if s.final_clusters is None
                else f"; {s.final_clusters:g} cluster(s), the largest holding {s.final_largest_cluster_share:.0%} of the agents"
            )
        ]
    several = s.final_anchor_share is not None
    nearest = "the nearest anchor" if several else "the anchor"
    head = "the hivemind formed" if s.formed else "the hivemind did not form"
    n_seeds = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    lines = [
        f"verdict: {head}: {s.agents_reached:g}/{s.agents} agents within {s.reached_tol:g} of {nearest} "
        f"after {s.final_step} steps ({n_seeds}; {s.agents_reachable} can hear an anchor)",
        f"  mean distance to {nearest} {s.initial_distance_mean:.3g} -> {s.final_distance_mean:.3g}"
        + (f" (seeds' range{_span(final_by_seed)})" if final_by_seed and len(final_by_seed) > 1 else "")
        + (
            ""
            if s.final_clusters is None
            else f"; {s.final_clusters:g} cluster(s), the largest holding {s.final_largest_cluster_share:.0%} of the agents"
        ),
    ]
    if several:
        nodes = manifest.anchor_nodes
        labels = nodes if len(nodes) == len(s.final_anchor_share) else [str(k) for k in range(len(s.final_anchor_share))]
        shares = ", ".join(f"{lab} {v:.0%}" for lab, v in zip(labels, s.final_anchor_share, strict=True))
        lines.append(f"  agents by nearest anchor: {shares}")
    t = manifest.theory
    if t is not None and t.predicted_rate is not None and t.measured_rate is not None:
        error = float("nan") if t.relative_error is None else t.relative_error
        lines.append(
            f"  rate of approach per step: predicted {t.predicted_rate:.4g} (linearised at the anchor), measured "
            f"{t.measured_rate:.4g} (relative error {error:.1%})"
        )
    elif t is not None and not t.stable:
        lines.append("  the linearised theory predicts no convergence at this step size (unstable)")
    return lines


def sweep(table: list[dict], keys: list[str], tol: float | None) -> list[str]:
    """A sweep: at how many points every seed reached the anchor, and where the extremes are.

    ``table`` holds one row per point with the seeds' ``final_mean_distance``, ``reached``
    (share of seeds within tolerance), ``clusters`` and ``diverged`` shares, and the keys.
    """
    n = len(table)
    reached = sum(1 for r in table if r["reached"] >= 1.0)
    diverged = sum(1 for r in table if r["diverged"] > 0)
    split = sum(1 for r in table if r["clusters"] > 1.0)
    at = lambda r: ", ".join(f"{k} = {r[k]:.4g}" if isinstance(r[k], float) else f"{k} = {r[k]}" for k in keys)  # noqa: E731
    dist = [r["final_mean_distance"] for r in table]
    finite = [r for r in table if np.isfinite(r["final_mean_distance"])]
    lines = [
        f"verdict: the hivemind formed at {reached} of {n} points (the mean distance to the anchor fell below {_g(tol)} "
        "at every seed); "
        f"split into clusters at {split}, diverged at {diverged}",
        f"  final mean distance over the grid{_span(dist)}",
    ]
    if finite:
        best = min(finite, key=lambda r: r["final_mean_distance"])
        worst = max(finite, key=lambda r: r["final_mean_distance"])
        lines.append(
            f"  nearest at {at(best)} ({best['final_mean_distance']:.3g}); farthest at {at(worst)} "
            f"({worst['final_mean_distance']:.3g})"
        )
    return lines


def live(summary: LiveSummary, agents_sd: dict | None = None) -> list[str]:
    """A live run: per decoding, the population's movement, the paper's measures, the best
    forecast model chosen on training data and whether the anchor's pull is measurable."""
    if not summary.anchored:
        return _discussions(summary)
    lines = [
        f"verdict: {summary.scenario}, {summary.agents} agents around anchor {summary.anchor}, "
        f"{summary.rounds} rounds (one seed; spreads over agents and rounds)"
    ]
    for row in summary.table:
        d = row.decoding
        p = summary.paper.get(d) or {}
        sd = (agents_sd or {}).get(d)
        moved = row.final_embedding_distance - row.initial_embedding_distance
        lines.append(
            f"  {d}: distance to the anchor {row.initial_embedding_distance:.3f} -> {row.final_embedding_distance:.3f} rad "
            f"({moved:+.3f}{'' if sd is None else f'; agents sd {sd:.3f}'}); compliance {_g(row.mean_compliance, '.2f')} "
            f"(paper {_g(p.get('mean_compliance'), '.2f')}), final Jaccard {row.final_jaccard_to_anchor:.3f} "
            f"(paper {_g(p.get('final_jaccard_to_anchor'), '.3f')})"
        )
        f = summary.fits.get(d)
        if not f:
            lines.append("    no fit (live.fit = false)")
            continue
        if "refused" in f:
            lines.append(f"    not fitted: {f['refused']}")
            continue
        held = f.get("best_heldout")
        sp, sn = (held or {}).get("skill_vs_persistence"), (held or {}).get("skill_vs_neighbours")
        beats = "no held-out rounds to score it on" if held is None else ("beats" if (sp or 0) > 0 else "does not beat")
        lines.append(
            f"    best on training rounds: {f['best']}, which {beats} persistence one round ahead on the held-out rounds "
            f"(from round {f['design'].get('heldout_from_round')}): skill {_g(sp, '+.3f')} vs persistence, "
            f"{_g(sn, '+.3f')} vs copy-the-neighbours"
        )
        pull = f.get("anchor_pull")
        if pull:
            what = {True: "measurable", False: "not measurable", None: "not identified"}[pull["measurable"]]
            iv = pull.get("interval")
            lines.append(
                f"    anchor's pull: {what} (kappa {pull['anchor_coupling']:.4f}"
                + ("" if iv is None else f", 90% interval [{iv[0]:.4f}, {iv[1]:.4f}]")
                + ")"
            )
    lines += _probe_verdicts(summary)
    return lines


def _discussions(summary: LiveSummary) -> list[str]:
    lines = [f"verdict: {summary.discussions} discussion(s) of {summary.topic!r}, no anchor, {summary.rounds} rounds"]
    for row in summary.table:
        lines.append(
            f"  {row.decoding}: distance within a discussion {_g(row.initial_within_discussion_distance, '.3f')} -> "
            f"{_g(row.final_within_discussion_distance, '.3f')} rad; "
            f"mean probe {_g(row.initial_probe, '+.2f')} -> {_g(row.final_probe, '+.2f')} on -2..2"
        )
    for decoding, f in summary.discussion_fit.items():
        lines.append(f"  {decoding} fit: {f['line']}")
    return lines + _probe_verdicts(summary)


def _probe_verdicts(summary: LiveSummary) -> list[str]:
    out = []
    for model, p in summary.probes.items():
        ok = "reliable" if p.reliable else "unreliable: it does not tell agreement from rejection"
        out.append(f"  probe of {model} ({p.form}): {ok} (paraphrase above rejection in {p.negation_auc:.0%} of pairs)")
    return out


def fit(doc: FitDocument) -> list[str]:
    """A fit: the model chosen on training data and its held-out skill against the baselines
    (``theory.fitting.describe`` leads with them); a live run's folder has one per decoding."""
    from hivemind.theory.fitting.describe import format_fit

    if doc.per_decoding:
        lines = [f"verdict: {len(doc.conversations)} conversations (one per decoding), each fitted on its own"]
        for name, one in doc.conversations.items():
            lines += [f"  {name}: " + line.strip() for line in format_fit(one).split("\n")[:3]]
        return lines
    head = format_fit(doc.conversations[""]).split("\n")[:4]  # the data, the choice, its held-out skill, its parameters
    return ["verdict: " + head[0], *head[1:]]
