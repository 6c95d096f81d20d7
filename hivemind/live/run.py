"""``run_live``: a live run from scenario to files. It orchestrates; the pieces live elsewhere.

Before round 0 the embedder (``geometry``) and, with ``live.probe``, each model's probe
(``probe``) are measured on the shipped check set; ``conversation`` runs the rounds into
DIR/transcript.jsonl; then each decoding's conversation is fitted as ``hivemind fit`` fits one
(``hivemind.theory.fitting``; many discussions by their probes), then the files (``outputs``)
and the figure (``hivemind.plot``).
The text printed at the end is ``report``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from hivemind.errors import InputError
from hivemind.io.atomic import atomic_write
from hivemind.io.records import NETCDF_ENGINE
from hivemind.io.results import save_json
from hivemind.io.trajectories import Trajectories, unit_rows
from hivemind.live.backends import Backend, Embedder, Population, ProbeRequest, load_population
from hivemind.live.config import read_live
from hivemind.live.conversation import (
    TRANSCRIPT,
    Asking,
    Embeddings,
    LiveError,
    Trajectory,
    Transcript,
    converse,
    embedder_key,
    header_for,
    peer_edges,
)
from hivemind.live.geometry import describe as describe_separation
from hivemind.live.geometry import separation
from hivemind.live.model import ModelError
from hivemind.live.outputs import PAPER, live_dataset, save_tables, summarize_live
from hivemind.live.probe import FORMS, GOOD, ProbeError, check_set_probe, continuation
from hivemind.live.probe import describe as describe_probe
from hivemind.scenario import Scenario

OUTPUTS = (TRANSCRIPT, "rounds.csv", "agents.csv", "live.nc", "summary.json", "live.png", "live.pdf", "live.svg")
__all__ = ["OUTPUTS", "PAPER", "LiveResult", "run_live", "check_embedder", "check_probes"]


@dataclass
class LiveResult:
    out: Path
    trajectories: list[Trajectory]
    fits: dict[str, dict]  # per decoding: fit.json's document of its conversation (theory.fitting)
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
        transcript = _open_transcript(out, header, resume, "greedy" in spec.decodings, say)
        try:
            pop = Population.of(spec, backend)
            embedder = check_embedder(scenario, pop.embedder, say)
            probes, asking = check_probes(scenario, pop, say) if spec.probe else ({}, {})
            trajectories = converse(scenario, backend, transcript, say, on_round=lambda t: save_tables(t, out), probes=asking)
        finally:
            transcript.close()
    finally:
        if own:
            backend.close()
    fits, discussion_fit = _fit(scenario, trajectories, out, say)
    summary = summarize_live(scenario, trajectories, fits, header, transcript.records)
    summary |= {"embedder": embedder, **({"probes": probes} if probes else {}), "fit": fits}
    if discussion_fit:
        summary["discussion_fit"] = discussion_fit
    return _write(scenario, out, trajectories, fits, summary, formats)


def _open_transcript(out: Path, header: dict, resume: bool, greedy: bool, say: Callable[[str], None]) -> Transcript:
    """A new transcript, or the one in ``out`` to resume (saying what it holds and what changed)."""
    if not resume:
        return Transcript.create(out / TRANSCRIPT, header)
    transcript = Transcript.resume(out / TRANSCRIPT, header)
    say(f"resuming: {len(transcript.records)} messages already in {out / TRANSCRIPT}")
    changed = execution_changes(transcript.header, header, greedy=greedy)
    if changed:
        say(changed)
    return transcript


def _fit(scenario: Scenario, trajectories: list[Trajectory], out: Path, say: Callable[[str], None]) -> tuple[dict, dict]:
    """(each decoding's fit of the conversation, the fit of many discussions' probes), as ``live.fit`` asks."""
    spec = scenario.live
    if spec.fit and spec.anchored:
        say("fitting models of the conversation to the embeddings (as hivemind fit does)")
        return {t.decoding: fit_conversation(scenario, t) for t in trajectories}, {}
    if spec.fit and trajectories[0].conversations is not None:
        say("fitting models of the discussions' probes (as hivemind fit does) ...")
        return {}, fit_discussions_of(out, trajectories, spec, say)
    return {}, {}


def _write(scenario: Scenario, out: Path, trajectories: list[Trajectory], fits: dict, summary: dict, formats) -> LiveResult:
    """live.nc, summary.json and the figure, beside the tables and the transcript written during the rounds."""
    ds = live_dataset(scenario, trajectories, fits)
    embedder = summary["embedder"]
    ds.attrs.update(embedder=embedder["name"], embedder_agreement_auc=embedder["check_set"]["agreement_auc"])
    if "probes" in summary:
        ds.attrs["probe_reliable"] = int(all(p["reliable"] for p in summary["probes"].values()))
    files = [out / "rounds.csv", out / "agents.csv"]  # written by save_tables after each round
    atomic_write(out / "live.nc", lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))
    save_json(summary, out / "summary.json")
    files += [out / "live.nc", out / "summary.json"]
    from hivemind.plot import live_figure, save_figure

    files += save_figure(live_figure(ds), out / "live", formats)
    return LiveResult(out, trajectories, fits, summary, ds, [out / TRANSCRIPT, *files])


# Below this anchor coupling per round the anchor would need ln 2 / 1e-3 ~ 700 rounds to halve a
# distance: the pull is called measurable when the interval's lower end is above it.
KAPPA_RESOLUTION = 1e-3
# Runs of the chosen model, with its fitted noise, that the theory line averages: run without
# its noise, a model fitted one round ahead collapses far faster than the agents it was fitted
# to (R^2 of -25 and -383 on the quickstart's mean curve), the noise being what keeps them apart.
THEORY_RUNS = 16


def conversation(scenario: Scenario, t: Trajectory) -> Trajectories:
    """One decoding's conversation as ``hivemind fit`` reads it back from live.nc: every agent's
    message embedding per round (unit rows in float64), who hears whom in the prompts, the
    anchor's embedding, and the agents' groups where ``live.groups`` names several."""
    src, dst = peer_edges(scenario)
    y = unit_rows(np.stack(t.embeddings), "live.nc", "embedding")
    anchor = unit_rows(np.asarray(t.anchor_embedding)[None], "live.nc", "anchor_embedding")[0]
    groups = t.rows[0].groups
    return Trajectories(t.decoding, y, anchor, src, dst, None if groups is None else tuple(groups))


def fit_conversation(scenario: Scenario, t: Trajectory) -> dict:
    """One decoding's conversation fitted as ``hivemind fit`` fits one conversation: its first half
    of the rounds fitted (the model chosen on the later ones of those), the rest held out. Adds
    the chosen model run from round 0 with its fitted noise (``theory``: every agent's distance to
    the anchor averaged over ``THEORY_RUNS`` runs drawn from ``live.seed``, the figure's line, and
    its R^2 on the mean distance) and whether its anchor coupling is measurably above
    ``KAPPA_RESOLUTION`` (``anchor_pull``). A conversation the models cannot be fitted to gives
    ``{"refused": why}``."""
    import jax

    from hivemind.theory.fitting import Design, fit_panel
    from hivemind.theory.fitting.data import trajectory_panel
    from hivemind.theory.fitting.scores import r_squared

    panel = trajectory_panel(conversation(scenario, t))
    try:
        comparison = fit_panel(panel, design=Design(seed=scenario.live.seed))
    except ValueError as e:
        return {"refused": str(e)}
    doc = comparison.to_json()
    best = comparison.fits[comparison.best]
    anchor = panel.arrays.anchor
    # A stream of its own: the fit's split and resamples draw from key(seed) itself.
    keys = jax.random.split(jax.random.fold_in(jax.random.key(scenario.live.seed), THEORY_RUNS), THEORY_RUNS)
    distance = np.mean([np.arccos(np.clip(best.simulate(k) @ anchor, -1.0, 1.0)) for k in keys], axis=0)  # (rounds + 1, agents)
    observed = np.asarray([row.agents["embedding_distance_to_anchor"] for row in t.rows])
    doc["theory"] = {
        "model": comparison.best,
        "runs": THEORY_RUNS,
        "distance": distance.tolist(),
        "r2_mean": r_squared(observed.mean(1)[1:], distance.mean(1)[1:]),
    }
    interval = best.intervals.get("anchor_coupling")
    doc["anchor_pull"] = {
        "model": comparison.best,
        "anchor_coupling": float(best.params["anchor_coupling"]),
        "interval": interval,
        "kappa_resolution": KAPPA_RESOLUTION,
        "measurable": None if interval is None else bool(interval[0] > KAPPA_RESOLUTION),
    }
    return doc


def fit_discussions_of(out: Path, trajectories: list[Trajectory], spec, say: Callable[[str], None] = print) -> dict:
    """A run of many discussions (a graph of several components): each decoding's probes fitted
    as ``hivemind fit`` fits DIR/discussions_<decoding>.csv (held-out discussions, CV over the
    training ones). Without probes, the texts are left to ``hivemind fit DIR --text text``."""
    from hivemind.theory.fitting.data import Options, fit_discussions

    fits = {}
    for t in trajectories:
        if "probe" not in t.rows[0].agents:
            continue
        path = out / f"discussions_{t.decoding}.csv"
        try:
            doc = fit_discussions(path, None, Options(seed=spec.seed), say=lambda s: None).to_json()
        except InputError as e:  # too few discussions to hold any out, say: the run's files stay
            fits[t.decoding] = {"line": f"probes not fitted: {str(e).splitlines()[0][:200]}"}
            continue
        h = doc["best_heldout"] or {}  # None with too few discussions to hold any out
        skill = "-" if h.get("skill_vs_persistence") is None else f"{h['skill_vs_persistence']:.3f}"
        iv = h.get("interval_vs_persistence")
        fits[t.decoding] = {
            "table": path.name,
            "line": f"the probes fitted over held-out discussions ({path.name}): best model {doc['best']} "
            f"(chosen on the training discussions), held-out skill against persistence {skill}"
            + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else ""),
            "fit": doc,
        }
    return fits


def check_embedder(scenario: Scenario, embedder: Embedder, say: Callable[[str], None] = print) -> dict[str, object]:
    """The embedder measured on the shipped check set (``hivemind.live.geometry``), said in one line;
    returns summary.json's record of it.

    Raises
    ------
    LiveError
        If it gives a zero or non-finite vector: one line naming the key that chose it.
    """
    spec = scenario.live
    name = getattr(embedder, "name", spec.embedding_model)
    try:
        sep = separation(Embeddings(embedder))
    except LiveError as e:
        raise LiveError(f"{scenario.source}: {embedder_key(spec)}: {e} (it gives no usable embeddings)") from None
    say(describe_separation(name, sep))
    return {"name": name, "as_written": spec.embedding_model, "sha256": embedder.model_sha256, "check_set": sep.to_dict()}


def check_probes(scenario: Scenario, pop: Population, say: Callable[[str], None] = print) -> tuple[dict, dict]:
    """Each model's probe measured on the check set before round 0, one line per model.

    With ``live.probe_form = "auto"`` every form of ``hivemind.live.probe.FORMS`` is tried and the
    one that best orders paraphrases above rejections is kept (chosen on the check set, never on
    the run). Returns (what summary.json records per model, the ``Asking`` per model).

    Raises
    ------
    ModelError
        If a form's answers are not single tokens for a model, or a server gives no log-probabilities.
    """
    spec = scenario.live
    statement = spec.statement
    records, asking = {}, {}
    for model, backend in pop.generators.items():
        backend.check_probe(model)
        names = list(FORMS) if spec.probe_form == "auto" else [spec.probe_form]
        tried = {}
        for name in names:
            try:
                tried[name] = check_set_probe(backend, FORMS[name], model)
            except ProbeError as e:
                if spec.probe_form != "auto":
                    raise ModelError(str(e)) from None
        if not tried:
            raise ModelError(f"live.probe: no probe form has single-token answers for {model}")
        form = max(tried, key=lambda n: (np.nan_to_num(tried[n].negation_auc, nan=-1), tried[n].overall_mass))
        sep = tried[form]
        say(describe_probe(model, form, sep))
        marks = backend.answer_spellings(FORMS[form], model)
        question = continuation("", FORMS[form].render(statement), backend.chat_turns())
        asking[model] = Asking(FORMS[form], ProbeRequest(tuple(backend.tokenize(question, False)), marks))
        records[model] = {
            "form": form,
            "statement": statement,
            "check_set": sep.to_dict(),
            "reliable": sep.reliable,
            "good": bool(sep.negation_auc >= GOOD),
            "forms": {
                n: {k: getattr(t, k) for k in ("negation_auc", "agreement_auc", "overall_mass", "signal", "noise", "reliable")}
                for n, t in tried.items()
            },
        }
    return records, asking
