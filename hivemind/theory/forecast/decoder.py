"""What a decoder does with an unchanged prompt: the gate of a deterministic decoder, its rule, and the discrete copy model."""

from __future__ import annotations

import numpy as np

from hivemind.theory.forecast.baselines import baselines, unit_rows

# Two messages are the same text when their embeddings are this close (rad): identical texts
# embed identically, and two different sentences are never this close.
SAME = 1e-6


def everyone_edges(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return j, i


def _heard(n: int, src, dst) -> np.ndarray:
    src, dst = np.asarray(src), np.asarray(dst)
    if src.size == 0:
        src, dst = everyone_edges(n)
    heard = np.zeros((n, n))
    heard[dst, src] = 1.0
    return heard


def _same(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(u - v, axis=-1) < SAME


def gate(y: np.ndarray, src, dst) -> np.ndarray:
    """(R, N): False where agent i's own and in-neighbours' messages at round t equal those at
    t - 1, so that a deterministic decoder, given the same prompt, writes the same text at t + 1."""
    y = np.asarray(y, np.float64)
    changed = ~_same(y[1:], y[:-1])  # (R, N): y[t + 1] differs from y[t]
    heard = _heard(y.shape[1], src, dst)
    open_ = np.ones((y.shape[0] - 1, y.shape[1]), bool)
    open_[1:] = changed[:-1] | (changed[:-1] @ heard.T > 0)
    return open_


# How often a sampled decoder repeats its message when its prompt did not change: the highest
# share measured (Gemma 3 270M at temperature 0.4, 21 of 27 unchanged prompts; 1 of 4 at 0.8;
# figures/live_forecast.json). A sampled run passes the gate's rule with at most this to the power
# of its unchanged prompts.
SAMPLED_REPEAT = 21 / 27
# Unchanged prompts needed, all answered by the same text, before a decoder is called
# deterministic: a false alarm of at most SAMPLED_REPEAT^20 = 0.66 % (one coincidence, as in a
# T = 0.8 run with one unchanged prompt repeated, no longer qualifies).
MIN_UNCHANGED = 20


def deterministic(y: np.ndarray, src, dst, train: int) -> dict:
    """Does the decoder answer an unchanged prompt with the same text, in the training transitions?

    The rule: at least ``MIN_UNCHANGED`` unchanged prompts, every one answered by the same
    text; ``false_alarm`` bounds the chance that a sampled decoder passes it
    (``SAMPLED_REPEAT`` to the power of the unchanged prompts).
    """
    y = np.asarray(y, np.float64)
    closed = ~gate(y, src, dst)[:train]
    repeated = _same(y[1 : train + 1], y[:train])[closed]
    unchanged = int(closed.sum())
    detected = bool(unchanged >= MIN_UNCHANGED and repeated.all())
    return {
        "detected": detected,
        "unchanged_prompts": unchanged,
        "repeated": int(repeated.sum()),
        "rule": f"at least {MIN_UNCHANGED} unchanged prompts, each answered by the same text",
        "false_alarm": float(SAMPLED_REPEAT**unchanged) if unchanged else 1.0,
    }


def copy_rates(y: np.ndarray, src, dst, weights) -> dict:
    """The share of (weighted) agent-transitions that repeat the agent's own last message
    (``repeat_rate``), repeat an in-neighbour's last message instead (``copy_rate``), or neither."""
    y = np.asarray(y, np.float64)
    n = y.shape[1]
    heard = _heard(n, src, dst)
    repeat = _same(y[1:], y[:-1])  # (R, N)
    # Per round, not as one (R, N, N, D) difference: a thousand agents would not fit.
    copied = ~repeat & np.stack(
        [np.any(_same(a[:, None], b[None]) & (heard > 0), axis=-1) for a, b in zip(y[1:], y[:-1], strict=True)]
    )
    w = np.asarray(weights, np.float64)[:, None] * np.ones((1, n))
    total = float(w.sum())
    q_repeat, q_copy = float((w * repeat).sum() / total), float((w * copied).sum() / total)
    return {"repeat_rate": q_repeat, "copy_rate": q_copy, "new_rate": 1.0 - q_repeat - q_copy}


def copy_forecast(y, src, dst, params: dict, origins, open_) -> np.ndarray:
    x = y[origins]
    neighbours = baselines(y, None, src, dst, origins)["neighbours"]
    q = params["repeat_rate"]
    f = unit_rows(q * x + (1.0 - q) * neighbours)
    return np.where(open_[origins][..., None], f, x)
