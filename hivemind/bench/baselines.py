"""What a user would write instead of hivemind: the references ``hivemind bench`` races.

All compute the same update as the engine's ``gradient`` rule on the sphere,
x_i <- Exp_{x_i}(eta / m_i sum_j w_ij Log_{x_i}(x_j)), from the same sorted edge
arrays, so that the harness can check they agree before it compares their speed:

- ``numpy_step``: vectorized numpy, one gather per endpoint and a scatter-add, either
  ``np.add.at`` or a scipy sparse matrix product;
- ``loop_step``: a per-agent Python loop over ``Agent`` objects that each hold a
  numpy state vector and read their neighbours one at a time, the way NDlib's and
  Mesa's model steps are written;
- ``geomstats_kernel``: the geometry kernel alone (batched sphere log then exp) from
  geomstats' numpy backend, when geomstats is installed (the ``bench`` extra).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import scipy.sparse


def _sphere_log(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = y - x
    c = np.einsum("ij,ij->i", x, d)
    u = d - c[:, None] * x
    s = np.sqrt(np.einsum("ij,ij->i", u, u))
    theta = np.arctan2(s, 1.0 + c)
    f = np.divide(theta, s, out=np.ones_like(s), where=s > 1e-30)
    return f[:, None] * u


def _sphere_exp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    t = np.linalg.norm(v, axis=1, keepdims=True)
    sinc = np.divide(np.sin(t), t, out=np.ones_like(t), where=t > 1e-30)
    y = np.cos(t) * x + sinc * v
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def scatter_matrix(receivers: np.ndarray, n_nodes: int, dtype=np.float32) -> scipy.sparse.csr_matrix:
    """The (N, E) 0/1 matrix that sums messages into their receivers."""
    e = receivers.shape[0]
    return scipy.sparse.csr_matrix((np.ones(e, dtype), (receivers, np.arange(e))), shape=(n_nodes, e))


def numpy_step(
    x: np.ndarray,
    senders: np.ndarray,
    receivers: np.ndarray,
    weights: np.ndarray,
    inv_inertia: np.ndarray,
    step_size: float,
    matrix: scipy.sparse.csr_matrix | None = None,
) -> np.ndarray:
    """One gradient step in vectorized numpy; ``matrix`` (from ``scatter_matrix``) swaps np.add.at for a sparse product."""
    msg = weights[:, None] * _sphere_log(x[receivers], x[senders])
    if matrix is None:
        pull = np.zeros_like(x)
        np.add.at(pull, receivers, msg)
    else:
        pull = matrix @ msg
    return _sphere_exp(x, (step_size * inv_inertia)[:, None] * pull)


class Agent:
    """An agent as agent-based frameworks hold one: its own state vector and its neighbours."""

    def __init__(self, state: np.ndarray, inv_inertia: float):
        self.state = state
        self.next_state = state
        self.inv_inertia = inv_inertia
        self.neighbours: list[tuple[Agent, float]] = []

    def step(self, step_size: float) -> None:
        """Read every neighbour, then stage the move (applied by ``advance``, as in Mesa's staged activation)."""
        if self.inv_inertia == 0.0:
            return
        x = self.state
        pull = np.zeros_like(x)
        for other, w in self.neighbours:
            d = other.state - x
            c = float(np.dot(x, d))
            u = d - c * x
            s = float(np.linalg.norm(u))
            f = math.atan2(s, 1.0 + c) / s if s > 1e-30 else 1.0
            pull += (w * f) * u
        v = (step_size * self.inv_inertia) * pull
        t = float(np.linalg.norm(v))
        y = math.cos(t) * x + (math.sin(t) / t if t > 1e-30 else 1.0) * v
        self.next_state = y / np.linalg.norm(y)

    def advance(self) -> None:
        self.state = self.next_state


def agent_model(
    x: np.ndarray, senders: np.ndarray, receivers: np.ndarray, weights: np.ndarray, inv_inertia: np.ndarray
) -> list[Agent]:
    """One ``Agent`` per row of ``x``, wired to the agents it hears."""
    agents = [Agent(row.copy(), float(m)) for row, m in zip(x, inv_inertia, strict=True)]
    for j, i, w in zip(senders.tolist(), receivers.tolist(), weights.tolist(), strict=True):
        agents[i].neighbours.append((agents[j], float(w)))
    return agents


def loop_step(agents: list[Agent], step_size: float) -> None:
    """One synchronous model step, agent by agent, as an NDlib iteration or a Mesa model step runs it."""
    for agent in agents:
        agent.step(step_size)
    for agent in agents:
        agent.advance()


def geomstats_kernel(dim: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """``(x, y) -> Exp_x(Log_x(y) / 2)`` batched, with geomstats' numpy backend; None if it is not installed."""
    os.environ.setdefault("GEOMSTATS_BACKEND", "numpy")
    if not hasattr(np, "trapz"):  # geomstats 2.8 imports np.trapz, which numpy 2.4 removed
        np.trapz = np.trapezoid
    try:
        from geomstats.geometry.hypersphere import Hypersphere
    except ImportError:
        return None
    metric = Hypersphere(dim=dim).metric

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return metric.exp(0.5 * metric.log(y, base_point=x), base_point=x)

    return kernel
