"""The models of a discussion, named by their mechanisms.

Every model is one step of the same form (``step``), with some pulls switched on:

- ``anchor``: a pull toward the anchor only (needs an anchor);
- ``peer``: DeGroot, a pull toward the mean of the agents one hears (plus the anchor's, if any);
- ``fj``: ``peer`` plus Friedkin-Johnsen stubbornness toward each agent's first value;
- ``attractor``: ``fj`` plus a pull toward one free point of the space;
- ``attractor[COL]``: the same with one point per value of the column ``COL`` (an assigned
  stance, a group; ``attractor[A,B]``: per combination of two columns' values): agents drift
  toward a stance-dependent attractor;
- ``confidence``: ``peer`` with bounded confidence, a smooth weight exp(-(d / eps)^4) per message;
- ``groups[COL]``: ``peer`` with one coupling per ordered pair of ``COL``'s values, the pull on an
  agent of one group toward the agents of another (who pulls whom: model families, personas);
- ``edges[kind]``: ``peer`` with one coupling per kind of tie (the edges table's ``kind``
  column: friend and foe, trust and distrust), each a real number: a negative one pushes away;
- ``+decay`` after any model with a peer pull: the coupling fades over the discussion,
  eta_t = eta exp(-t / T), the timescale T (rounds) fitted.

``persistence``, ``neighbours`` and ``mean`` are the baselines every model is scored against:
no change, the mean of the agents one hears, and the training data's mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BASES = ("anchor", "peer", "fj", "attractor", "confidence", "groups", "edges")
# The column of the edges table whose labels are the kinds of tie.
KIND_COLUMN = "kind"
BASELINES = ("persistence", "neighbours", "mean")
_NAME = re.compile(r"^(?P<base>[a-z]+)(\[(?P<by>[A-Za-z_][\w]*(,[A-Za-z_][\w]*)*)\])?(?P<decay>\+decay)?$")


@dataclass(frozen=True)
class Model:
    """A model as the switches of ``step``: hashable, so that it is a static argument of ``jax.jit``."""

    name: str
    base: str
    by: str | None = None  # the column whose values each get an attractor, or a coupling
    decay: bool = False

    @property
    def peer(self) -> bool:
        return self.base != "anchor"

    @property
    def stubborn(self) -> bool:
        return self.base in ("fj", "attractor")

    @property
    def attractor(self) -> bool:
        return self.base == "attractor"

    @property
    def confidence(self) -> bool:
        return self.base == "confidence"

    def free(self, anchor: bool, space: str = "euclidean") -> tuple[str, ...]:
        """The names of the parameters this model fits, in the order of ``params.TABLE``."""
        on = {
            "peer_coupling": self.peer and self.base not in ("groups", "edges"),
            "coupling_decay": self.decay,
            "anchor_coupling": anchor,
            "stubbornness": self.stubborn,
            "attractor_coupling": self.attractor,
            "attractor": self.attractor and space == "sphere",
            "attractor_drift": self.attractor and space == "euclidean",
            "confidence": self.confidence,
            "group_coupling": self.base == "groups",
            "edge_coupling": self.base == "edges",
        }
        return tuple(name for name, yes in on.items() if yes)


def parse(name: str) -> Model:
    """The ``Model`` called ``name`` (``"peer"``, ``"fj+decay"``, ``"attractor[stance]+decay"``).

    Raises ``ValueError`` naming what is wrong.
    """
    m = _NAME.match(name.strip())
    if m is None or m["base"] not in BASES:
        raise ValueError(
            f"unknown model {name!r}: one of {', '.join(BASES)} (attractor[COLUMN] and groups[COLUMN] by a column, "
            f"edges[{KIND_COLUMN}] by the kind of tie), and +decay"
        )
    base, by, decay = m["base"], m["by"], bool(m["decay"])
    if by and base not in ("attractor", "groups", "edges"):
        raise ValueError(f"model {name!r}: only the attractor and the groups can be per column (attractor[{by}], groups[{by}])")
    if base == "groups" and not by:
        raise ValueError(f"model {name!r}: groups needs a column, as groups[stance]")
    if base == "edges" and by != KIND_COLUMN:
        raise ValueError(f"model {name!r}: one coupling per kind of tie is edges[{KIND_COLUMN}] (the edges table's kind column)")
    if decay and base == "anchor":
        raise ValueError(f"model {name!r}: the anchor model has no peer coupling to decay")
    return Model(name.strip(), base, by, decay)


def defaults(anchor: bool, by: str | None, kinds: bool = False) -> tuple[Model, ...]:
    """The models fitted when none are named: each base with and without decay, the attractor
    per ``by``'s values and the couplings per pair of them when a column is given, and one
    coupling per kind of tie when the ties are of several ``kinds``."""
    names = (["anchor"] if anchor else []) + ["peer", "peer+decay", "fj", "fj+decay", "attractor", "attractor+decay"]
    names.append("confidence")
    if by:
        names += [f"attractor[{by}]", f"attractor[{by}]+decay", f"groups[{by}]", f"groups[{by}]+decay"]
    if kinds:
        names += [f"edges[{KIND_COLUMN}]", f"edges[{KIND_COLUMN}]+decay"]
    return tuple(parse(n) for n in names)


def split_names(text: str) -> tuple[str, ...]:
    """Model names from a comma-separated list, commas inside brackets kept: "peer,attractor[a,b]"."""
    names, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += ch
    names.append(current.strip())
    return tuple(n for n in names if n)


def every(anchor: bool, by: str, kinds: bool) -> tuple[Model, ...]:
    """Every model the registry (``BASES``) names, with and without decay where it has a peer
    pull, per ``by`` where a base needs a column: what a test of all models iterates over, so
    that a base added later is covered without anyone listing it."""
    out = []
    for base in BASES:
        if (base == "anchor" and not anchor) or (base == "edges" and not kinds):
            continue
        column = f"[{KIND_COLUMN}]" if base == "edges" else f"[{by}]" if base == "groups" else ""
        names = [base + column] + ([f"attractor[{by}]"] if base == "attractor" else [])
        for name in names:
            out.append(parse(name))
            if base != "anchor":
                out.append(parse(name + "+decay"))
    return tuple(out)
