"""``run_live``: a live run from scenario to files, and the files themselves.

DIR/transcript.jsonl   every message, as it is written (see ``conversation``)
DIR/rounds.csv         one row per (decoding, round): the paper's metrics and counted events; with groups
                       of agents (a mixed population, live.groups) also one per (decoding, round, group)
DIR/agents.csv         one row per (decoding, round, agent): Jaccard, compliance, embedding distance (and group)
DIR/live.nc            the same as labelled arrays, with the embeddings and the theory's curves
DIR/summary.json       the paper-style table and the theory fit
DIR/live.png (, .pdf)  observed against fitted theory, Jaccard and compliance over rounds
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hivemind.io.atomic import atomic_write
from hivemind.io.records import NETCDF_ENGINE
from hivemind.io.results import finite_or_none, save_csv, save_json, versions
from hivemind.live.backend import Backend, LlamaBackend
from hivemind.live.config import read_live
from hivemind.live.conversation import (
    TRANSCRIPT,
    Embedder,
    LiveError,
    Population,
    Trajectory,
    Transcript,
    converse,
    embedder_key,
    header_for,
)
from hivemind.live.fit import TheoryFit, fit_dynamics, fit_forecast, fit_group_couplings, fit_step_size, peer_edges
from hivemind.live.geometry import describe as describe_separation
from hivemind.live.geometry import separation
from hivemind.live.model import NAMED_MODELS, ModelError, resolve_model
from hivemind.scenario import Scenario

OUTPUTS = (TRANSCRIPT, "rounds.csv", "agents.csv", "live.nc", "summary.json", "live.png", "live.pdf", "live.svg")

# What the paper reports for its GGUF benchmark, shown beside ours.
PAPER = {
    "hash_collisions": 0,
    "greedy": {"mean_compliance": 0.50, "final_jaccard_to_anchor": 0.295},
    "stochastic": {"mean_compliance": 0.531, "final_jaccard_to_anchor": 0.224},
}


@dataclass
class LiveResult:
    out: Path
    trajectories: list[Trajectory]
    fits: dict[str, TheoryFit]
    summary: dict
    dataset: xr.Dataset
    files: list[Path]


def execution_changes(old: dict, new: dict, greedy: bool) -> str | None:
    """One line saying which execution settings differ from the transcript's, or None.

    Threads and batch sizes are not part of the scenario's identity (a job requeued on a
    smaller node resumes), but llama.cpp sums in another order with them, so greedy texts
    written after the resume may differ from those an uninterrupted run would have written.
    """
    before, after = old.get("execution"), new.get("execution", {})
    if before is None or before == after:
        return None
    what = ", ".join(f"live.{k} {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(after) if before.get(k) != after.get(k))
    note = "; greedy texts after this point may differ from an uninterrupted run's" if greedy else ""
    return f"resuming with other execution settings: {what}{note}"


def run_live(
    scenario: Scenario,
    out: str | Path,
    *,
    resume: bool = False,
    backend: Backend | Population | None = None,
    say: Callable[[str], None] = print,
    formats: tuple[str, ...] = ("png", "pdf"),
) -> LiveResult:
    """Run the conversation of ``scenario``'s ``[live]`` section into ``out``.

    Parameters
    ----------
    scenario : a scenario with a ``[live]`` section.
    out : the run directory.
    resume : continue the transcript in ``out`` instead of starting a new one.
    backend : a model backend for every agent, or a ``Population`` (one backend per model as
        ``live.model`` writes it, and the embedder); by default llama.cpp on ``live.model``,
        one load per distinct file.
    say : where progress lines go.
    formats : figure formats.

    Raises
    ------
    LiveError, ModelError
        With a one-line message; whatever the transcript holds stays on disk.
    """
    scenario = read_live(scenario)
    spec = scenario.live
    if spec is None:
        raise LiveError(f"{scenario.source}: has no [live] section; see scenarios/live_quickstart.toml")
    out = Path(out)
    own = backend is None
    if own:
        backend, model_label = load_population(scenario, say)
    else:
        model_label = backend.name if not isinstance(backend, Population) else {m: b.name for m, b in backend.generators.items()}
    try:
        header = header_for(scenario, backend, model_label)
        if resume:
            transcript = Transcript.resume(out / TRANSCRIPT, header)
            say(f"resuming: {len(transcript.records)} messages already in {out / TRANSCRIPT}")
            changed = execution_changes(transcript.header, header, greedy="greedy" in spec.decodings)
            if changed:
                say(changed)
        else:
            transcript = Transcript.create(out / TRANSCRIPT, header)
        try:
            embedder = check_embedder(scenario, Population.of(spec, backend).embedder, say)
            trajectories = converse(scenario, backend, transcript, say, on_round=lambda t: save_tables(t, out))
        finally:
            transcript.close()
    finally:
        if own:
            backend.close()

    fits = {}
    for t in trajectories:
        observed = np.asarray([row["_distance_per_agent"] for row in t.rows])
        fits[t.decoding] = fit_step_size(scenario, t.anchor_embedding, t.embeddings[0], observed)
    dynamics, forecasts, couplings = {}, {}, {}
    if spec.fit:
        say("fitting models of the conversation to the embeddings")
        for t in trajectories:
            y = np.stack(t.embeddings)
            if spec.fit_free_running:
                dynamics[t.decoding] = fit_dynamics(scenario, y, t.anchor_embedding, spec.fit_resamples, spec.seed)
            forecasts[t.decoding] = fit_forecast(scenario, y, t.anchor_embedding, spec.fit_resamples, spec.seed)
            couplings[t.decoding] = fit_group_couplings(scenario, y, t.anchor_embedding, spec.fit_resamples, spec.seed)
    couplings = {d: c for d, c in couplings.items() if c is not None}
    ds = live_dataset(scenario, trajectories, fits, dynamics, couplings)
    summary = summarize_live(scenario, trajectories, fits, header, transcript.records, dynamics)
    summary["embedder"] = embedder
    summary["forecast"] = forecasts
    if couplings:
        summary["group_coupling"] = couplings
    ds.attrs.update(embedder=embedder["name"], embedder_agreement_auc=embedder["check_set"]["agreement_auc"])
    files = [out / "rounds.csv", out / "agents.csv"]  # written by save_tables after each round
    atomic_write(out / "live.nc", lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))
    save_json(summary, out / "summary.json")
    files += [out / "live.nc", out / "summary.json"]
    from hivemind.plot import live_figure, save_figure

    files += save_figure(live_figure(ds), out / "live", formats)
    return LiveResult(out, trajectories, fits, summary, ds, [out / TRANSCRIPT, *files])


def check_embedder(scenario: Scenario, embedder: Backend, say: Callable[[str], None] = print) -> dict:
    """The embedder measured on the shipped check set (``hivemind.live.geometry``), said in one line.

    Raises
    ------
    LiveError
        If it gives a zero or non-finite vector: one line naming the key that chose it.
    """
    spec = scenario.live
    name = getattr(embedder, "name", spec.embedding_model)
    try:
        sep = separation(Embedder(embedder))
    except LiveError as e:
        raise LiveError(f"{scenario.source}: {embedder_key(spec)}: {e} (it gives no usable embeddings)") from None
    say(describe_separation(name, sep))
    return {"name": name, "as_written": spec.embedding_model, "sha256": embedder.model_sha256, "check_set": sep}


def load_population(scenario: Scenario, say: Callable[[str], None] = print) -> tuple[Population, dict[str, str]]:
    """One llama.cpp backend per distinct model file, and the embedder; (population, path of each model as written).

    Raises
    ------
    ModelError
        With a one-line message naming ``live.model`` or ``live.embedding_model``.
    """
    spec = scenario.live
    base = Path(scenario.source).parent if scenario.source else None
    if spec.backend == "openai":
        return _server_population(spec, base, say)
    by_file: dict[Path, LlamaBackend] = {}
    generators, labels = {}, {}
    n_agents = scenario.arrays.n_nodes - 1
    try:
        chat_of_file: dict[Path, tuple[str, str]] = {}
        for written in spec.distinct_models:
            path = resolve_model(written, base, say)
            # One load per file serves every name of it, with one chat setting.
            first = chat_of_file.setdefault(path, (written, spec.chat_of(written)))
            if first[1] != spec.chat_of(written):
                raise ModelError(f"live.chat: {first[0]} and {written} are one file ({path}); give them one chat setting")
            if path not in by_file:
                say(f"model {path} ({spec.n_ctx} tokens of context, {spec.threads} threads)")
                batch = spec.batch_size(n_agents)
                by_file[path] = LlamaBackend(path, spec.n_ctx, spec.threads, spec.chat_of(written), batch=batch)
            generators[written], labels[written] = by_file[path], str(path)
        embedder = load_embedder(spec.embedding_model, base, generators[spec.distinct_models[0]], by_file, spec, say)
        labels["embedding"] = str(embedder.path)
    except BaseException:
        for b in by_file.values():
            b.close()
        raise
    return Population(generators, embedder), labels


def _server_population(spec, base: Path | None, say: Callable[[str], None]) -> tuple[Population, dict[str, str]]:
    """Every model on the servers of ``live.endpoints`` (checked before the first round), and the embedder."""
    from hivemind.live.server import ServerBackend

    server = ServerBackend(spec)
    try:
        server.check(spec.distinct_models)
        for m in spec.distinct_models:
            say(f"model {m} on {', '.join(server.routes[m])} (up to {spec.concurrency} requests in flight per endpoint)")
        labels = {m: " ".join(server.routes[m]) for m in spec.distinct_models}
        if spec.embedding_model in ("server", "self"):
            embedder = server
            labels["embedding"] = f"{server.routes[spec.distinct_models[0]][0]}/embeddings"
        else:
            embedder = load_embedder(spec.embedding_model, base, None, {}, spec, say)
            labels["embedding"] = str(embedder.path)
    except BaseException:
        server.close()
        raise
    return Population(dict.fromkeys(spec.distinct_models, server), embedder), labels


def load_embedder(written: str, base: Path | None, first: LlamaBackend, by_file: dict, spec, say: Callable[[str], None] = print):
    """The backend that embeds every text, as ``live.embedding_model`` names it (see ``hivemind.live.embedders``).

    ``first`` is the first agent's generator ("self"); a GGUF file already loaded for
    generation in ``by_file`` is shared rather than loaded twice.
    """
    from hivemind.live import embedders

    if written == "server":
        raise ModelError(
            'live.embedding_model: "server" embeds on the servers of live.backend = "openai"; this run is in-process'
        )
    if written == "self":
        return first
    if written == embedders.DEFAULT_EMBEDDER:
        say("embedder minilm: all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime")
        return embedders.minilm(spec.threads, say)
    path = Path(written).expanduser()
    if not path.is_absolute() and base is not None and written not in NAMED_MODELS:
        path = base / path
    if path.suffix == ".onnx":
        return embedders.onnx_file(path, spec.threads)
    try:
        path = resolve_model(written, base, say)
    except ModelError as e:
        raise ModelError(str(e).replace("live.model", "live.embedding_model", 1)) from None
    if path not in by_file:
        say(f"embedding model {path}")
        by_file[path] = LlamaBackend(path, spec.n_ctx, spec.threads, spec.chat)
    return by_file[path]


def save_tables(trajectories: list[Trajectory], out: Path) -> list[Path]:
    """rounds.csv and agents.csv for every finished round so far.

    With groups of agents (a mixed population, ``live.groups``) rounds.csv has a ``group``
    column: a row for everyone (``all``), then one per group, and agents.csv names each agent's.
    """
    rounds, agents = [], []
    for t in trajectories:
        for row in t.rows:
            plain = {k: v for k, v in row.items() if not k.startswith("_")}
            groups = row["_by_group"]
            rounds.append({**plain, "group": "all"} if groups else plain)
            rounds += [{"decoding": t.decoding, "round": row["round"], "group": g, **m} for g, m in groups.items()]
            for k, label in enumerate(row["_labels"]):
                agents.append(
                    {
                        "decoding": t.decoding,
                        "round": row["round"],
                        "agent": label,
                        **({"group": row["_groups"][k]} if groups else {}),
                        "jaccard_to_anchor": row["_jaccard_per_agent"][k],
                        "compliant": int(row["_compliant"][k]),
                        "embedding_distance_to_anchor": row["_distance_per_agent"][k],
                    }
                )
    save_csv(pd.DataFrame(rounds), out / "rounds.csv")
    save_csv(pd.DataFrame(agents), out / "agents.csv")
    return [out / "rounds.csv", out / "agents.csv"]


def live_dataset(
    scenario: Scenario,
    trajectories: list[Trajectory],
    fits: dict[str, TheoryFit],
    dynamics: dict | None = None,
    couplings: dict | None = None,
) -> xr.Dataset:
    """Everything per (decoding, round, agent) as labelled arrays; with groups of agents, also per
    (decoding, group, round) and the fitted group couplings per (decoding, hearer, speaker)."""
    t0 = trajectories[0]
    labels = [str(scenario.arrays.labels[i]) for i in t0.agents]
    src, dst = peer_edges(scenario)
    decodings = [t.decoding for t in trajectories]

    def per_round(key):
        return (("decoding", "round"), np.asarray([[row[key] for row in t.rows] for t in trajectories], float))

    def per_agent(key):
        return (("decoding", "round", "agent"), np.asarray([[row[key] for row in t.rows] for t in trajectories], float))

    data = {
        "embedding": (
            ("decoding", "round", "agent", "coord"),
            np.asarray([np.stack(t.embeddings) for t in trajectories]),
            {"long_name": "unit-norm embedding of the agent's latest message"},
        ),
        "anchor_embedding": (("coord",), t0.anchor_embedding),
        "distance_to_anchor": (
            *per_agent("_distance_per_agent"),
            {"long_name": "geodesic distance of the embeddings", "units": "radians"},
        ),
        "theory_distance": (
            ("decoding", "round", "agent"),
            np.asarray([fits[d].predicted for d in decodings]),
            {"long_name": "the engine's distance to the anchor with the fitted step size", "units": "radians"},
        ),
        "jaccard_to_anchor": per_agent("_jaccard_per_agent"),
        # The agents' graph (dst hears src, agent indices), so that `hivemind fit` can read this file.
        "edge_src": (("edge",), src),
        "edge_dst": (("edge",), dst),
        "compliant": per_agent("_compliant"),
        "fitted_step_size": (("decoding",), np.asarray([fits[d].step_size for d in decodings])),
        "r2_mean": (("decoding",), np.asarray([_nan(fits[d].r2_mean) for d in decodings])),
    }
    if dynamics and all(dynamics.values()):
        from hivemind.theory.dynamics_fit import MODELS

        data["fitted_mean_distance"] = (
            ("decoding", "model", "round"),
            np.asarray([[dynamics[d]["models"][m]["predicted_mean_distance"] for m in MODELS] for d in decodings]),
            {"long_name": "mean distance to the anchor of the fitted dynamics (first half fitted, second predicted)"},
        )
        for key in ("peer_coupling", "anchor_coupling", "noise"):
            data[f"fitted_{key}"] = (
                ("decoding", "model"),
                np.asarray([[dynamics[d]["models"][m]["params"][key] for m in MODELS] for d in decodings]),
            )
        data["fitted_heldout_r2"] = (
            ("decoding", "model"),
            np.asarray([[_nan(dynamics[d]["models"][m]["heldout_r2"]) for m in MODELS] for d in decodings]),
        )
    for key in (
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
    ):
        data[f"round_{key}"] = per_round(key)
    coords = {}
    groups = scenario.live.group_of
    if groups is not None and len(set(groups)) > 1:
        names = list(dict.fromkeys(groups))
        coords = {"agent_group": ("agent", list(groups)), "group": names}
        for key in ("compliance", "jaccard_to_anchor", "embedding_distance_to_anchor", "vendi_score", "mean_pairwise_distance"):
            data[f"group_{key}"] = (
                ("decoding", "group", "round"),
                np.asarray([[[row["_by_group"][g][key] for row in t.rows] for g in names] for t in trajectories]),
            )
        if couplings and len(couplings) == len(decodings):
            coords |= {"hearer": names, "speaker": names}
            data["fitted_group_coupling"] = (
                ("decoding", "hearer", "speaker"),
                np.asarray([couplings[d]["params"]["group_coupling"] for d in decodings]),
                {"long_name": "pull of the speaker's group on the hearer's (theory.groups)"},
            )
            data["fitted_group_anchor_coupling"] = (
                ("decoding", "group"),
                np.asarray([[couplings[d]["params"]["anchor_coupling"][g] for g in names] for d in decodings]),
            )
    return xr.Dataset(
        data,
        coords={
            **coords,
            "decoding": decodings,
            "round": np.arange(len(t0.rows)),
            "agent": labels,
            "coord": np.arange(t0.anchor_embedding.size),
            **({"model": list(next(iter(dynamics.values()))["models"])} if dynamics and all(dynamics.values()) else {}),
        },
        attrs={
            "scenario": scenario.name,
            "anchor_node": str(scenario.arrays.labels[scenario.anchor_index]),
            "anchor_text": scenario.live.anchor_text,
            "rule": scenario.live.rule.describe(),
        },
    )


def _group_summary(t: Trajectory, g: str) -> dict:
    first, last = t.rows[0]["_by_group"][g], t.rows[-1]["_by_group"][g]
    later = t.rows[1:] or t.rows
    return {
        "agents": first["agents"],
        "mean_compliance": float(np.mean([row["_by_group"][g]["compliance"] for row in later])),
        "final_compliance": last["compliance"],
        "final_jaccard_to_anchor": last["jaccard_to_anchor"],
        "initial_embedding_distance": first["embedding_distance_to_anchor"],
        "final_embedding_distance": last["embedding_distance_to_anchor"],
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
    dynamics: dict | None = None,
) -> dict:
    table = []
    for t in trajectories:
        later = t.rows[1:] or t.rows
        mine = [r for r in records if r["decoding"] == t.decoding and r.get("generated")]
        tokens = sum(r.get("completion_tokens", 0) for r in mine)
        seconds = sum(r.get("seconds", 0.0) for r in mine)
        # A server's requests overlap, so their latencies do not add up to a time: no rate from them.
        served = any("endpoint" in r for r in mine)
        fit = fits[t.decoding]
        table.append(
            {
                "decoding": t.decoding,
                "hash_collisions": int(sum(row["hash_collisions"] for row in t.rows)),
                "mean_compliance": float(np.mean([row["compliance"] for row in later])),
                "final_compliance": float(t.rows[-1]["compliance"]),
                "final_jaccard_to_anchor": float(t.rows[-1]["jaccard_to_anchor"]),
                "initial_embedding_distance": float(t.rows[0]["embedding_distance_to_anchor"]),
                "final_embedding_distance": float(t.rows[-1]["embedding_distance_to_anchor"]),
                "final_distinct_outputs": int(t.rows[-1]["distinct_outputs"]),
                "initial_vendi_score": float(t.rows[0]["vendi_score"]),
                "final_vendi_score": float(t.rows[-1]["vendi_score"]),
                "final_distinct_2": float(t.rows[-1]["distinct_2"]),
                "final_mean_pairwise_distance": float(t.rows[-1]["mean_pairwise_distance"]),
                "empty_outputs": int(sum(row["empty_outputs"] for row in t.rows)),
                "malformed_outputs": int(sum(row.get("malformed_outputs", 0) for row in t.rows)),
                "truncated_prompts": int(sum(row["truncated_prompts"] for row in t.rows)),
                "messages_generated": len(mine),
                "completion_tokens": int(tokens),
                "tokens_per_second": finite_or_none(tokens / seconds) if seconds > 0 and not served else None,
                **({"mean_request_seconds": seconds / len(mine)} if served and mine else {}),
                "theory_step_size": fit.step_size,
                "theory_r2_mean": fit.r2_mean,
            }
        )
        if t.rows[0]["_by_group"]:
            table[-1]["by_group"] = {g: _group_summary(t, g) for g in t.rows[0]["_by_group"]}
    spec = scenario.live
    return {
        "scenario": scenario.name,
        "model": header["model"],
        "model_sha256": header["model_sha256"],
        "agents": len(trajectories[0].agents),
        "rounds": spec.rounds,
        "anchor": header["anchor"],
        "anchor_text": spec.anchor_text,
        "rule": spec.rule.describe(),
        "table": table,
        "theory": {d: f.to_dict() for d, f in fits.items()},
        # live.fit_free_running: the engine's dynamics fitted to the mean distance curve.
        "free_running_fit": dynamics or {},
        "paper": PAPER,
        "versions": versions(),
    }


def format_table(summary: dict) -> str:
    """The paper's table: hash collisions, mean compliance, final Jaccard to the anchor, per decoding."""
    lines = [
        f"{'decoding':<18}{'hash collisions':>16}{'mean compliance':>17}{'final Jaccard':>15}"
        f"{'emb. distance':>18}{'theory R^2':>12}{'empty':>7}{'scaffold':>10}{'truncated':>11}"
    ]
    for row in summary["table"]:
        r2 = "-" if row["theory_r2_mean"] is None else f"{row['theory_r2_mean']:.3f}"
        dist = f"{row['initial_embedding_distance']:.3f}->{row['final_embedding_distance']:.3f}"
        lines.append(
            f"{row['decoding']:<18}{row['hash_collisions']:>16}{row['mean_compliance']:>17.3f}"
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
                f"{'  ' + g:<18}{'':>16}{m['mean_compliance']:>17.3f}{m['final_jaccard_to_anchor']:>15.3f}{dist:>18}"
                f"   {vendi} ({m['agents']} agents, {row['decoding']})"
            )
    lines += format_fit(summary.get("free_running_fit") or {})
    for decoding, c in (summary.get("group_coupling") or {}).items():
        from hivemind.theory.groups import describe

        lines += ["", f"{decoding}: who pulls whom, the group-coupling model fitted by the one-step loss:"]
        lines += describe(c)
    forecast = {d: f for d, f in (summary.get("forecast") or {}).items() if f is not None}
    if forecast:
        from hivemind.live.forecast import format_forecast

        lines += [
            "",
            "forecast models fitted by the one-step loss and scored one round ahead, per agent, on the held-out rounds:",
        ]
        lines += [format_forecast(forecast)]
        for decoding, f in forecast.items():
            pull = f.get("anchor_pull")
            if pull is None:
                continue
            what = {True: "yes", False: "no", None: "not tested (live.fit_resamples = 0)"}[pull["measurable"]]
            iv = "" if pull["interval"] is None else f", 90% interval [{pull['interval'][0]:.4f}, {pull['interval'][1]:.4f}]"
            lines.append(
                f"{decoding}: anchor pull measurably above zero ({pull['model']} model, kappa {pull['anchor_coupling']:.4f}{iv}, "
                f"resolution {pull['kappa_resolution']:g} per round)? {what}"
            )
    return "\n".join(lines)


def _num(x, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def format_fit(fit: dict) -> list[str]:
    """The engine's dynamics fitted to the embeddings: one line per (decoding, model), then the verdicts."""
    if not fit:
        return []
    lines = [
        "",
        "free-running check: the engine's dynamics fitted to the mean distance curve (first half of the rounds "
        "fitted, second half predicted; R^2 against the held-out window's own mean):",
    ]
    lines.append(
        f"{'decoding':<12}{'model':<8}{'eta (peers)':>12}{'kappa (anchor)':>16}{'90% interval':>20}{'sigma':>8}"
        f"{'held-out RMSE':>15}{'held-out R^2':>14}  long run"
    )
    verdicts = []
    for decoding, f in fit.items():
        if f is None:
            lines.append(f"{decoding:<12}too few rounds to fit (needs 2 or more)")
            continue
        for model, m in f["models"].items():
            p, ci, lr = m["params"], m["anchor_coupling_interval"], m["long_run"]
            interval = "-" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"
            half = _num(lr["half_life_rounds"], ".1f")
            if lr["verdict"] == "collapse":
                run = f"collapse, half-life {half} rounds"
            else:
                run = f"floor at {lr['mean_distance']:.3f} rad (half-life {half} rounds)"
            lines.append(
                f"{decoding:<12}{model:<8}{p['peer_coupling']:>12.4f}{p['anchor_coupling']:>16.4f}{interval:>20}"
                f"{p['noise']:>8.4f}{m['heldout_rmse']:>15.4f}{_num(m['heldout_r2']):>14}  {run}"
            )
        lr = f["models"]["peer"]["long_run"]
        if lr["verdict"] == "collapse":
            future = f"collapse into the anchor, the mean distance halving every {_num(lr['half_life_rounds'], '.1f')} rounds."
        else:
            future = (
                f"a floor at {lr['mean_distance']:.3f} rad from the anchor after {lr['rounds']} rounds "
                f"(now {lr['mean_distance_now']:.3f})."
            )
        verdicts.append(
            f"{decoding}: persistence's held-out R^2 {_num(f.get('persistence_heldout_r2'))}; "
            f"run on from the last round, the peer model predicts {future}"
        )
    return lines + verdicts
