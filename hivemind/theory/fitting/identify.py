"""What the data can carry: a model is refused, with the reason, where the fitted transitions
cannot inform its parameters.

The rules read only who was observed when and who hears whom, never the values, so that a
table can be checked before anything is embedded or written:

- more free numbers than the fitted transitions give (transitions x dimensions of a change);
- a pull between agents (a peer coupling, one per group pair or kind of tie, bounded confidence)
  where no fitted transition has anyone to hear;
- a coupling that fades (``+decay``) whose pull is seen at fewer than two rounds;
- stubbornness toward an agent's first value with no transition after an agent's first round
  (at its first round the pull is zero);
- an attractor per group where a group has fewer than two agents in the fitted transitions
  (its attractor and its agents' noise are one thing);
- a coupling per kind of tie where a kind carries no fitted message.
"""

from __future__ import annotations

import numpy as np

from hivemind.theory.fitting.models import Model
from hivemind.theory.fitting.panel import Panel


def _heard(panel: Panel) -> np.ndarray:
    """(T - 1, N, K): whether each message of the heard table was observed at the origin round."""
    a = panel.arrays
    return (a.heard_weight != 0)[None] & a.valid[:-1][:, a.heard]


def refusal(model: Model, panel: Panel, weights: np.ndarray, n_params: int) -> str | None:
    """Why ``model`` (with ``n_params`` free numbers) cannot be fitted to the transitions with
    ``weights`` (T - 1, N) > 0, or None when it can."""
    fitted = np.asarray(weights) > 0
    n = int(fitted.sum())
    numbers = n * panel.dof
    if n_params > numbers:
        return f"{n_params} free parameters, {n} fitted transitions ({numbers} numbers)"
    heard = _heard(panel) & fitted[..., None]
    hearing = heard.any(-1)  # (T - 1, N)
    if model.peer and not hearing.any():
        return "no agent hears anyone in the fitted transitions"
    if model.decay and np.unique(np.nonzero(hearing)[0]).size < 2:
        return "a fading coupling needs messages heard at two or more rounds"
    if model.stubborn:
        a = panel.arrays
        first = np.argmax(a.valid, axis=0)
        later = fitted & (np.arange(fitted.shape[0])[:, None] > first[None, :])
        if not later.any():
            return "stubbornness needs transitions after an agent's first round"
    if model.attractor and model.by:
        agents = fitted.any(0)
        sizes = np.bincount(panel.arrays.group[agents], minlength=len(panel.groups))
        small = [g for g, k in zip(panel.groups, sizes, strict=True) if k < 2]
        if small:
            return f"an attractor per {model.by} needs two or more agents of each; {', '.join(small[:3])} has fewer"
    if model.base == "edges":
        a = panel.arrays
        seen = np.bincount(np.broadcast_to(a.heard_kind, heard.shape)[heard], minlength=max(len(panel.kinds), 1))
        names = panel.kinds or ("all",)
        empty = [k for k, c in zip(names, seen, strict=True) if c == 0]
        if empty:
            return f"no fitted message comes through a tie of kind {', '.join(empty[:3])}"
    return None
