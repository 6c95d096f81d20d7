"""What a live run writes besides its transcript: the tables, the labelled arrays and the summary.

DIR/rounds.csv    one row per (decoding, round): the population's measures; with groups of agents
                  (a mixed population, live.groups) also one per (decoding, round, group)
DIR/agents.csv    one row per (decoding, round, agent): Jaccard, compliance, embedding distance, the
                  probe (and the agent's group and discussion); ``hivemind fit`` reads it as a table
DIR/live.nc       the same as labelled arrays, with the embeddings and the fitted model's curves
DIR/summary.json  the paper-style table, the checks, the probes and the fits

Every measure that needs an anchor, a rule or probes is written only when the run has it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hivemind.io.documents import SUMMARY_VERSION
from hivemind.io.results import finite_or_none, save_csv, versions
from hivemind.live.conversation import Round, Trajectory, peer_edges
from hivemind.live.probe import LOW_MASS
from hivemind.scenario import Scenario

# What the paper reports for its GGUF benchmark, shown beside ours.
PAPER = {
    "hash_collisions": 0,
    "greedy": {"mean_compliance": 0.50, "final_jaccard_to_anchor": 0.295},
    "stochastic": {"mean_compliance": 0.531, "final_jaccard_to_anchor": 0.224},
}
# Per-round measures that live.nc keeps as round_<name> when the run has them.
ROUND_KEYS = (
    "distinct_outputs",
    "duplicate_outputs",
    "hash_collisions",
    "compliance",
    "empty_outputs",
    "malformed_outputs",
    "truncated_prompts",
    "distinct_2",
    "vendi_score",
    "mean_pairwise_distance",
    "probe_mean",
    "probe_sd",
    "probe_mass",
    "within_discussion_distance",
    "within_discussion_probe_gap",
)
AGENT_LONG_NAMES = {
    "embedding_distance_to_anchor": ("distance_to_anchor", "geodesic distance of the embeddings to the anchor's", "radians"),
    "jaccard_to_anchor": ("jaccard_to_anchor", "Jaccard similarity of the words to the anchor's", None),
    "compliant": ("compliant", "the message follows live.rule", None),
    "probe": ("probe", "the agent's stated agreement, expected value of its answer probabilities", "-2..2"),
    "probe_entropy": ("probe_entropy", "entropy of the agent's answer probabilities", "nats"),
    "probe_mass": ("probe_mass", "next-token probability on the probe's answer tokens", None),
}


def agent_rows(t: Trajectory, row: Round) -> list[dict]:
    """agents.csv's rows of one round: the agent, its group and discussion, then its measures."""
    out = []
    for k, label in enumerate(row.labels):
        rec = {"decoding": t.decoding, "round": row.round, "agent": label}
        if row.groups is not None:
            rec["group"] = row.groups[k]
        if row.conversations is not None:
            rec["conversation"] = row.conversations[k]
        out.append(rec | {key: values[k] for key, values in row.agents.items()})
    return out


def save_tables(trajectories: list[Trajectory], out: Path) -> list[Path]:
    """rounds.csv and agents.csv for every finished round so far.

    With groups of agents (a mixed population, ``live.groups``) rounds.csv has a ``group``
    column: a row for everyone (``all``), then one per group, and agents.csv names each agent's.
    """
    rounds, agents = [], []
    for t in trajectories:
        for row in t.rows:
            rounds.append({**row.row(), "group": "all"} if row.by_group else row.row())
            rounds += [{"decoding": t.decoding, "round": row.round, "group": g, **m} for g, m in row.by_group.items()]
            agents += agent_rows(t, row)
    save_csv(pd.DataFrame(rounds), out / "rounds.csv")
    save_csv(pd.DataFrame(agents), out / "agents.csv")
    return [out / "rounds.csv", out / "agents.csv", *save_discussions(trajectories, out)]


def discussion_table(t: Trajectory, stances=None) -> pd.DataFrame:
    """One decoding's discussions in the field's tidy form, for ``hivemind fit``: conversation,
    round, agent (its number within the discussion), node (its label in the graph), the assigned
    stance, the probe as ``opinion``, and the agent's latest message."""
    rows = []
    for row, texts in zip(t.rows, t.texts, strict=False):
        seen: dict[int, int] = {}
        for k, label in enumerate(row.labels):
            c = row.conversations[k]
            # The agent numbered within its discussion, as the field's tables number them; the node beside it.
            position = seen[c] = seen.get(c, -1) + 1
            rec = {"conversation": c, "round": row.round, "agent": position, "node": label}
            if stances is not None:
                rec["stance"] = stances[k]
            if "probe" in row.agents:
                rec["opinion"] = row.agents["probe"][k]
            rows.append(rec | {"text": texts[k]})
    return pd.DataFrame(rows)


def save_discussions(trajectories: list[Trajectory], out: Path) -> list[Path]:
    """discussions_<decoding>.csv for a run of several discussions (nothing for one)."""
    files = []
    for t in trajectories:
        if t.conversations is None or not t.rows:
            continue
        path = out / f"discussions_{t.decoding}.csv"
        save_csv(discussion_table(t, t.stances), path)
        files.append(path)
    return files


def live_dataset(
    scenario: Scenario,
    trajectories: list[Trajectory],
    fits: dict[str, dict],
) -> xr.Dataset:
    """Everything per (decoding, round, agent) as labelled arrays; with ``fits`` (each decoding's
    fit.json document, ``run.fit_conversation``) the chosen model's distance to the anchor; with
    groups of agents, also per (decoding, group, round) and the fitted group couplings per
    (decoding, hearer, speaker)."""
    t0 = trajectories[0]
    first = t0.rows[0]
    labels = list(first.labels)
    src, dst = peer_edges(scenario)
    decodings = [t.decoding for t in trajectories]

    def per_round(key):
        return (("decoding", "round"), np.asarray([[row.metrics[key] for row in t.rows] for t in trajectories], float))

    def per_agent(key):
        return (("decoding", "round", "agent"), np.asarray([[row.agents[key] for row in t.rows] for t in trajectories], float))

    data = {
        "embedding": (
            ("decoding", "round", "agent", "coord"),
            np.asarray([np.stack(t.embeddings) for t in trajectories]),
            {"long_name": "unit-norm embedding of the agent's latest message"},
        ),
        # The agents' graph (dst hears src, agent indices), so that `hivemind fit` can read this file.
        "edge_src": (("edge",), src),
        "edge_dst": (("edge",), dst),
    }
    for key, (name, long_name, units) in AGENT_LONG_NAMES.items():
        if key in first.agents:
            data[name] = (*per_agent(key), {"long_name": long_name, **({"units": units} if units else {})})
    if t0.anchor_embedding is not None:
        data["anchor_embedding"] = (("coord",), t0.anchor_embedding)
    theory = [(fits.get(d) or {}).get("theory") for d in decodings]
    if theory and all(theory):
        data["theory_distance"] = (
            ("decoding", "round", "agent"),
            np.asarray([th["distance"] for th in theory]),
            {
                "long_name": "distance to the anchor of the chosen fitted model run from round 0 with its noise (mean of runs)",
                "units": "radians",
            },
        )
        data["theory_model"] = (("decoding",), np.asarray([th["model"] for th in theory]))
        data["r2_mean"] = (("decoding",), np.asarray([_nan(th["r2_mean"]) for th in theory]))
    for key in ROUND_KEYS:
        if key in first.metrics:
            data[f"round_{key}"] = per_round(key)
    coords: dict = {}
    if first.conversations is not None:
        coords["conversation"] = ("agent", list(first.conversations))
    if first.groups is not None:
        names = list(dict.fromkeys(first.groups))
        coords |= {"agent_group": ("agent", list(first.groups)), "group": names}
        for key in first.by_group[names[0]]:
            if key in ("agents", "distinct_outputs"):
                continue
            data[f"group_{key}"] = (
                ("decoding", "group", "round"),
                np.asarray([[[row.by_group[g][key] for row in t.rows] for g in names] for t in trajectories]),
            )
        couplings = [group_coupling(fits.get(d)) for d in decodings]
        if couplings and all(c is not None for c in couplings):
            coords |= {"hearer": names, "speaker": names}
            data["fitted_group_coupling"] = (
                ("decoding", "hearer", "speaker"),
                np.asarray([[[c[h][s] for s in names] for h in names] for c in couplings]),
                {"long_name": "pull of the speaker's group on the hearer's (the fit's groups[group]+decay model, at round 0)"},
            )
    spec = scenario.live
    attrs = {"scenario": scenario.name, "topic": spec.topic}
    if spec.anchored:
        attrs |= {"anchor_node": str(scenario.arrays.labels[scenario.anchor_index]), "anchor_text": spec.anchor_text}
    if spec.rule is not None:
        attrs["rule"] = spec.rule.describe()
    if spec.statement:
        attrs["probe_statement"] = spec.statement
    return xr.Dataset(
        data,
        coords={
            **coords,
            "decoding": decodings,
            "round": np.arange(len(t0.rows)),
            "agent": labels,
            "coord": np.arange(t0.embeddings[0].shape[1]),
        },
        attrs=attrs,
    )


GROUP_MODEL = "groups[group]+decay"


def group_coupling(doc: dict | None) -> dict | None:
    """Who pulls whom in one decoding's fit: the group-pair couplings of ``GROUP_MODEL``
    ({hearer: {speaker: value}}), or None where it was not fitted."""
    m = ((doc or {}).get("models") or {}).get(GROUP_MODEL) or {}
    return (m.get("params") or {}).get("group_coupling")


def _group_summary(t: Trajectory, g: str) -> dict:
    first, last = t.rows[0].by_group[g], t.rows[-1].by_group[g]
    later = t.rows[1:] or t.rows
    out = {"agents": first["agents"]}
    if "compliance" in first:
        out |= {
            "mean_compliance": float(np.mean([row.by_group[g]["compliance"] for row in later])),
            "final_compliance": last["compliance"],
        }
    if "jaccard_to_anchor" in first:
        out |= {
            "final_jaccard_to_anchor": last["jaccard_to_anchor"],
            "initial_embedding_distance": first["embedding_distance_to_anchor"],
            "final_embedding_distance": last["embedding_distance_to_anchor"],
        }
    if "probe_mean" in first:
        out |= {"initial_probe": first["probe_mean"], "final_probe": last["probe_mean"]}
    return out | {
        "initial_vendi_score": first["vendi_score"],
        "final_vendi_score": last["vendi_score"],
        "final_distinct_outputs": last["distinct_outputs"],
    }


def _nan(x):
    return np.nan if x is None else x


def summarize_live(
    scenario: Scenario,
    trajectories: list[Trajectory],
    fits: dict,
    header: dict,
    records: list[dict],
) -> dict:
    """summary.json: per decoding the paper's table (what exists of it) and the run's counts."""
    table = []
    for t in trajectories:
        later = t.rows[1:] or t.rows
        first, last = t.rows[0].metrics, t.rows[-1].metrics
        mine = [r for r in records if r["decoding"] == t.decoding and r.get("generated")]
        tokens = sum(r.get("completion_tokens", 0) for r in mine)
        seconds = sum(r.get("seconds", 0.0) for r in mine)
        # A server's requests overlap, so their latencies do not add up to a time: no rate from them.
        served = any("endpoint" in r for r in mine)
        row = {"decoding": t.decoding, "hash_collisions": int(sum(r.metrics["hash_collisions"] for r in t.rows))}
        if "compliance" in first:
            row |= {
                "mean_compliance": float(np.mean([r.metrics["compliance"] for r in later])),
                "final_compliance": float(last["compliance"]),
            }
        if "jaccard_to_anchor" in first:
            row |= {
                "final_jaccard_to_anchor": float(last["jaccard_to_anchor"]),
                "initial_embedding_distance": float(first["embedding_distance_to_anchor"]),
                "final_embedding_distance": float(last["embedding_distance_to_anchor"]),
            }
        if "probe_mean" in first:
            row |= {
                "initial_probe": finite_or_none(first["probe_mean"]),
                "final_probe": finite_or_none(last["probe_mean"]),
                "initial_probe_sd": finite_or_none(first["probe_sd"]),
                "final_probe_sd": finite_or_none(last["probe_sd"]),
                # Over the probed rounds (live.probe_every leaves the others empty).
                "mean_probe_mass": float(np.nanmean([r.metrics["probe_mass"] for r in t.rows])),
                # Rounds in which the answers got less than LOW_MASS of the next-token probability.
                "rounds_with_little_probe_mass": int(sum(r.metrics["probe_mass"] < LOW_MASS for r in t.rows)),
            }
        for key in ("within_discussion_distance", "within_discussion_probe_gap"):
            if key in first:
                row |= {f"initial_{key}": finite_or_none(first[key]), f"final_{key}": finite_or_none(last[key])}
        row |= {
            "final_distinct_outputs": int(last["distinct_outputs"]),
            "initial_vendi_score": float(first["vendi_score"]),
            "final_vendi_score": float(last["vendi_score"]),
            "final_distinct_2": float(last["distinct_2"]),
            "final_mean_pairwise_distance": float(last["mean_pairwise_distance"]),
            "empty_outputs": int(sum(r.metrics["empty_outputs"] for r in t.rows)),
            "malformed_outputs": int(sum(r.metrics.get("malformed_outputs", 0) for r in t.rows)),
            "truncated_prompts": int(sum(r.metrics["truncated_prompts"] for r in t.rows)),
            "messages_generated": len(mine),
            "completion_tokens": int(tokens),
            "tokens_per_second": finite_or_none(tokens / seconds) if seconds > 0 and not served else None,
            **({"mean_request_seconds": seconds / len(mine)} if served and mine else {}),
        }
        theory = (fits.get(t.decoding) or {}).get("theory")
        if theory:
            row |= {"theory_model": theory["model"], "theory_r2_mean": theory["r2_mean"]}
        if t.rows[0].by_group:
            row["by_group"] = {g: _group_summary(t, g) for g in t.rows[0].by_group}
        table.append(row)
    spec = scenario.live
    return {
        "schema_version": SUMMARY_VERSION,
        "scenario": scenario.name,
        "model": header["model"],
        "model_sha256": header["model_sha256"],
        "agents": len(trajectories[0].agents),
        "discussions": 1 + max(trajectories[0].conversations) if trajectories[0].conversations else 1,
        "rounds": spec.rounds,
        "anchor": header["anchor"],
        "anchor_text": spec.anchor_text,
        "topic": spec.topic,
        "rule": None if spec.rule is None else spec.rule.describe(),
        "table": table,
        "paper": PAPER,
        "versions": versions(),
    }
