"""The text a live run prints at the end: the paper's table beside ours, the probes, the fits."""

from __future__ import annotations


def format_table(summary: dict) -> str:
    """The paper's table: hash collisions, mean compliance, final Jaccard to the anchor, per decoding;
    a discussion without an anchor gets the measures it has (probes, distances within discussions)."""
    rows = summary["table"]
    if rows and "final_jaccard_to_anchor" not in rows[0]:
        return "\n".join(_discussion_table(summary))
    lines = [
        f"{'decoding':<18}{'hash collisions':>16}{'mean compliance':>17}{'final Jaccard':>15}"
        f"{'emb. distance':>18}{'theory R^2':>12}{'empty':>7}{'scaffold':>10}{'truncated':>11}"
    ]
    for row in rows:
        r2 = "-" if row.get("theory_r2_mean") is None else f"{row['theory_r2_mean']:.3f}"  # the chosen model's, from round 0
        dist = f"{row['initial_embedding_distance']:.3f}->{row['final_embedding_distance']:.3f}"
        lines.append(
            f"{row['decoding']:<18}{row['hash_collisions']:>16}{_num(row.get('mean_compliance')):>17}"
            f"{row['final_jaccard_to_anchor']:>15.3f}{dist:>18}{r2:>12}{row['empty_outputs']:>7}"
            f"{row['malformed_outputs']:>10}{row['truncated_prompts']:>11}"
        )
    paper = summary["paper"]
    for d in ("greedy", "stochastic"):
        p = paper[d]
        lines.append(
            f"{'paper ' + d:<18}{paper['hash_collisions']:>16}{p['mean_compliance']:>17.3f}{p['final_jaccard_to_anchor']:>15.3f}"
        )
    for row in summary["table"]:
        for g, m in (row.get("by_group") or {}).items():
            dist = f"{m['initial_embedding_distance']:.3f}->{m['final_embedding_distance']:.3f}"
            vendi = f"Vendi {m['initial_vendi_score']:.2f}->{m['final_vendi_score']:.2f}"
            lines.append(
                f"{'  ' + g:<18}{'':>16}{_num(m.get('mean_compliance')):>17}{m['final_jaccard_to_anchor']:>15.3f}{dist:>18}"
                f"   {vendi} ({m['agents']} agents, {row['decoding']})"
            )
    lines += _probe_lines(summary)
    lines += fit_lines(summary.get("fit") or {})
    return "\n".join(lines)


def fit_lines(fits: dict) -> list[str]:
    """Each decoding's fit, as ``hivemind fit`` prints one conversation's, and whether the anchor's
    pull is measurable in the chosen model."""
    from hivemind.theory.fitting.describe import format_fit

    lines = []
    for decoding, doc in fits.items():
        lines += ["", f"{decoding}: the models of hivemind fit, fitted to this conversation's embeddings:"]
        if "refused" in doc:
            lines.append(f"  not fitted: {doc['refused']}")
            continue
        lines += ["  " + line for line in format_fit(doc).splitlines()]
        pull = doc["anchor_pull"]
        what = {True: "yes", False: "no", None: "not identified"}[pull["measurable"]]
        iv = "" if pull["interval"] is None else f", 90% interval [{pull['interval'][0]:.4f}, {pull['interval'][1]:.4f}]"
        lines.append(
            f"  anchor pull measurably above zero ({pull['model']}, kappa {pull['anchor_coupling']:.4f}{iv}, "
            f"resolution {pull['kappa_resolution']:g} per round)? {what}"
        )
    return lines


def _num(x, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _arrow(row: dict, key: str, fmt: str = ".3f") -> str:
    a, b = row.get(f"initial_{key}"), row.get(f"final_{key}")
    return "-" if a is None or b is None else f"{a:{fmt}}->{b:{fmt}}"


def _discussion_table(summary: dict) -> list[str]:
    """The table of a run without an anchor: what the agents say, measured among themselves."""
    lines = [
        f"{summary['discussions']} discussion(s) of {summary['topic']!r}, no anchor:",
        f"{'decoding':<14}{'hash collisions':>16}{'distinct':>10}{'probe':>16}{'probe sd':>14}"
        f"{'gap in discussion':>19}{'distance in discussion':>24}{'empty':>7}",
    ]
    for row in summary["table"]:
        lines.append(
            f"{row['decoding']:<14}{row['hash_collisions']:>16}{row['final_distinct_outputs']:>10}"
            f"{_arrow(row, 'probe', '+.2f'):>16}{_arrow(row, 'probe_sd', '.2f'):>14}"
            f"{_arrow(row, 'within_discussion_probe_gap', '.2f'):>19}{_arrow(row, 'within_discussion_distance'):>24}"
            f"{row['empty_outputs']:>7}"
        )
    lines += _probe_lines(summary)
    for decoding, f in (summary.get("discussion_fit") or {}).items():
        lines += ["", f"{decoding}: {f['line']}"]
    return lines


def _probe_lines(summary: dict) -> list[str]:
    """The probes' check-set validity per model, and a warning where it fails."""
    probes = summary.get("probes") or {}
    lines = []
    for model, p in probes.items():
        sep = p["check_set"]
        lines.append(
            f"probe of {model} ({p['form']!r}): a paraphrase above a rejection in {sep['negation_auc']:.0%} of the check set's "
            f"pairs, {sep['overall_mass']:.1%} of the mass on the answers"
            + ("" if p["reliable"] else " -- unreliable: these probes do not tell agreement from rejection")
        )
    return lines
