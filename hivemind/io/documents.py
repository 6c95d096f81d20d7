"""The JSON documents hivemind writes, as typed records: one reader per kind of file.

Each kind has a JSON Schema beside this module (``schemas/*.schema.json``; fit.json's is
``hivemind/theory/fitting/fit.schema.json``) and a ``schema_version`` that the writer puts in and
the reader checks first, so that a folder written by another version of hivemind is one line
saying so rather than a missing key somewhere in the report. The tests validate real runs'
files against the schemas (jsonschema is a test dependency; the readers need none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivemind.errors import InputError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
# The version each writer puts in and each reader accepts. A change to a document's keys or
# meaning bumps its version here, its schema's "const", and the CHANGELOG.
MANIFEST_VERSION = 1
SWEEP_VERSION = 1
SUMMARY_VERSION = 1
DESIGN_VERSION = 1
FIT_VERSION = 2  # hivemind.theory.fitting.compare.SCHEMA_VERSION; tested to agree


class DocumentError(InputError, ValueError):
    """An output file this hivemind cannot read: ``str(e)`` names the file and the key or version."""


def schema(kind: str) -> dict:
    """The JSON Schema of ``manifest``, ``sweep`` or ``summary``."""
    return json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))


RERUN = "rerun the command that made it, or read it with the version that wrote it"


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DocumentError(f"{path}: cannot be read as JSON ({e.__class__.__name__})") from None


def _check_version(doc, where: str, version: int, advice: str = RERUN) -> None:
    """One line naming the file, the version that wrote it and the one this hivemind reads."""
    found = doc.get("schema_version", 0) if isinstance(doc, dict) else None
    if found != version:
        when = "an older" if isinstance(found, int) and found < version else "another"
        raise DocumentError(f"{where}: written by {when} hivemind (schema_version {found}; this one reads {version}): {advice}")


def _load(path: Path, version: int) -> dict:
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise DocumentError(f"{path}: not a JSON object")
    _check_version(doc, str(path), version)
    return doc


def _get(doc: dict, path: Path, key: str, kind: type | tuple = object, default: Any = ...):
    if key not in doc:
        if default is ...:
            raise DocumentError(f"{path}: no key {key!r}")
        return default
    value = doc[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) and value is not None:
        raise DocumentError(f"{path}: {key} is {type(value).__name__}, not {getattr(kind, '__name__', kind)}")
    return value


# --- manifest.json (a run) ----------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """The final state in a few numbers (``hivemind.io.results.summarize``)."""

    final_step: int
    final_distance_mean: float | None  # None: a run without an anchor
    final_distance_max: float | None
    initial_distance_mean: float | None
    final_loss_mean: float
    agents: int
    agents_reachable: int
    agents_reached: float
    reached_tol: float
    final_clusters: float | None = None
    final_largest_cluster_share: float | None = None
    final_dispersion: float | None = None
    final_anchor_share: tuple[float, ...] | None = None

    @property
    def formed(self) -> bool:
        return self.agents_reachable > 0 and self.agents_reached >= self.agents_reachable


@dataclass(frozen=True)
class RateTheory:
    """The linearised rate of approach against the measured one (``theory.linear.rate_report``)."""

    predicted_rate: float | None
    stable: bool
    measured_rate: float | None
    first_step: int | None
    relative_error: float | None
    raw: dict = field(repr=False, default_factory=dict)  # every number of the report, for the full tables


@dataclass(frozen=True)
class Manifest:
    path: Path
    scenario: dict
    scenario_text: str | None
    seeds: tuple[int, ...]
    precision: str
    kernel: str
    versions: dict[str, str]
    wall_time_s: float | None
    status: str
    summary: RunSummary | None
    theory: RateTheory | None
    design: dict | None = None  # a designed scenario's objective measured on the run (``runner.manifest.design_check``)

    @property
    def anchor_nodes(self) -> tuple[str, ...]:
        return tuple(str(a.get("node")) for a in self.scenario.get("anchors") or [])


def read_manifest(path: str | Path) -> Manifest:
    """A run's ``manifest.json``."""
    path = Path(path)
    doc = _load(path, MANIFEST_VERSION)
    s = _get(doc, path, "summary", dict)
    summary = None
    if s:
        try:
            share = s.get("final_anchor_share")
            summary = RunSummary(**{**s, "final_anchor_share": None if share is None else tuple(share)})
        except TypeError as e:
            raise DocumentError(f"{path}: summary: {e}") from None
    t = _get(doc, path, "theory", dict)
    theory = None
    if t:
        pred, meas = t.get("predicted") or {}, t.get("measured") or {}
        theory = RateTheory(
            pred.get("rate"), bool(pred.get("stable", True)), meas.get("rate"), meas.get("first_step"), t.get("relative_error"), t
        )
    return Manifest(
        path,
        _get(doc, path, "scenario", dict),
        _get(doc, path, "scenario_text", str, None),
        tuple(_get(doc, path, "seeds", list)),
        _get(doc, path, "precision", str),
        _get(doc, path, "kernel", str),
        dict(_get(doc, path, "versions", dict)),
        _get(doc, path, "wall_time_s", float, None),
        _get(doc, path, "status", str),
        summary,
        theory,
        _get(doc, path, "design", dict, None),
    )


# --- sweep.json ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepManifest:
    path: Path
    grid: dict[str, list]
    seeds: tuple[int, ...]
    tolerance: float
    scenario: dict
    scenario_text: str | None
    versions: dict[str, str]


def read_sweep(path: str | Path) -> SweepManifest:
    """A sweep's ``sweep.json`` (its numbers are in ``sweep.nc``)."""
    path = Path(path)
    doc = _load(path, SWEEP_VERSION)
    return SweepManifest(
        path,
        dict(_get(doc, path, "grid", dict)),
        tuple(_get(doc, path, "seeds", list)),
        _get(doc, path, "tolerance", float),
        _get(doc, path, "scenario", dict),
        _get(doc, path, "scenario_text", str, None),
        dict(_get(doc, path, "versions", dict)),
    )


# --- summary.json (a live run) ------------------------------------------------------------


@dataclass(frozen=True)
class DecodingRow:
    """One decoding's row of a live run's table: the paper's measures where the run has them
    (an anchor: compliance, Jaccard, distance to the anchor; probes; discussions)."""

    decoding: str
    hash_collisions: int
    final_distinct_outputs: int
    initial_vendi_score: float
    final_vendi_score: float
    final_distinct_2: float
    final_mean_pairwise_distance: float
    empty_outputs: int
    malformed_outputs: int
    truncated_prompts: int
    messages_generated: int
    completion_tokens: int
    tokens_per_second: float | None
    mean_compliance: float | None = None
    final_compliance: float | None = None
    final_jaccard_to_anchor: float | None = None
    initial_embedding_distance: float | None = None
    final_embedding_distance: float | None = None
    initial_probe: float | None = None
    final_probe: float | None = None
    initial_probe_sd: float | None = None
    final_probe_sd: float | None = None
    mean_probe_mass: float | None = None
    rounds_with_little_probe_mass: int | None = None
    initial_within_discussion_distance: float | None = None
    final_within_discussion_distance: float | None = None
    initial_within_discussion_probe_gap: float | None = None
    final_within_discussion_probe_gap: float | None = None
    mean_request_seconds: float | None = None
    theory_model: str | None = None
    theory_r2_mean: float | None = None
    by_group: dict | None = None

    @property
    def anchored(self) -> bool:
        """A run around an anchor (the paper's design), not discussions without one."""
        return self.final_jaccard_to_anchor is not None


@dataclass(frozen=True)
class ProbeCheck:
    form: str
    reliable: bool
    negation_auc: float


@dataclass(frozen=True)
class LiveSummary:
    path: Path
    scenario: str
    model: str
    agents: int
    discussions: int
    rounds: int
    anchor: str | None
    anchor_text: str | None
    topic: str | None
    rule: str | None
    table: tuple[DecodingRow, ...]
    paper: dict[str, dict]
    fits: dict[str, dict]  # per decoding, a fit.json document
    probes: dict[str, ProbeCheck]
    discussion_fit: dict[str, dict]
    versions: dict[str, str]
    raw: dict = field(repr=False, default_factory=dict)  # the document, for the live layer's own table

    @property
    def anchored(self) -> bool:
        return bool(self.table) and self.table[0].anchored


def read_summary(path: str | Path) -> LiveSummary:
    """A live run's ``summary.json``."""
    return parse_summary(_load(Path(path), SUMMARY_VERSION), path)


def parse_summary(doc: dict, path: str | Path = "summary.json") -> LiveSummary:
    """A summary.json document already in memory (a copy under figures/, a test's)."""
    path = Path(path)
    _check_version(doc, str(path), SUMMARY_VERSION)
    try:
        table = tuple(DecodingRow(**row) for row in _get(doc, path, "table", list))
    except TypeError as e:
        raise DocumentError(f"{path}: table: {e}") from None
    probes = {
        model: ProbeCheck(p["form"], bool(p["reliable"]), float(p["check_set"]["negation_auc"]))
        for model, p in (_get(doc, path, "probes", dict, None) or {}).items()
    }
    return LiveSummary(
        path,
        _get(doc, path, "scenario", str),
        _get(doc, path, "model", str),
        _get(doc, path, "agents", int),
        _get(doc, path, "discussions", int),
        _get(doc, path, "rounds", int),
        _get(doc, path, "anchor", str),
        _get(doc, path, "anchor_text", str),
        _get(doc, path, "topic", str),
        _get(doc, path, "rule", str),
        table,
        dict(_get(doc, path, "paper", dict)),
        dict(_get(doc, path, "fit", dict)),
        probes,
        dict(_get(doc, path, "discussion_fit", dict, None) or {}),
        dict(_get(doc, path, "versions", dict)),
        doc,
    )


# --- fit.json -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FitDocument:
    """A fit.json: one fitted table, or a live run's conversations (one per decoding), read the
    same way: ``conversations`` maps a name ("" for a single table) to a fit document."""

    path: Path
    conversations: dict[str, dict]
    per_decoding: bool


def read_fit(path: str | Path) -> FitDocument:
    path = Path(path)
    doc = _read_json(path)
    per_decoding = isinstance(doc, dict) and "decodings" in doc
    conversations = doc["decodings"] if per_decoding else {"": doc}
    for name, one in conversations.items():
        _check_version(one, f"{path}" + (f" ({name})" if name else ""), FIT_VERSION, "rerun hivemind fit")
    return FitDocument(path, dict(conversations), per_decoding)


# --- design.json ---------------------------------------------------------------------------


def read_design(path: str | Path) -> dict:
    """A ``hivemind design`` folder's ``design.json`` (its schema: ``schemas/design.schema.json``), version checked."""
    return _load(Path(path), DESIGN_VERSION)
