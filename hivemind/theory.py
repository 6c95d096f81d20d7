"""Linear theory of anchored consensus: the grounded Laplacian and the rates it predicts.

Near the anchor every manifold looks like its tangent space, and the ``gradient`` rule
becomes the linear iteration e_{t+1} = (I - eta M^-1 L_g) e_t on the displacements
e = Log_a(x). The iteration contracts at rate rho = max_i |1 - eta lambda_i| over the
eigenvalues lambda_i of M^-1 L_g: exactly on R^n, asymptotically on S^n and H^n.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hivemind.topology import GraphArrays, grounded_laplacian, reachable_from_anchor

# Dense eigenvalues above this many agents would cost more than the run itself.
MAX_DENSE_AGENTS = 4000


@dataclass(frozen=True)
class RatePrediction:
    """What the grounded Laplacian predicts for the ``gradient`` rule.

    lambda_min, lambda_max : extreme eigenvalues of M^-1 L_g over agents that hear the anchor
    rho : per-step contraction factor of the distance to the anchor, max |1 - eta lambda|
    rate : -log(rho), the slope of log distance against steps
    stable : whether rho < 1
    """

    lambda_min: float
    lambda_max: float
    rho: float
    rate: float
    stable: bool

    def steps_to(self, tol: float, initial: float) -> float:
        """Steps for a distance ``initial`` to fall below ``tol`` at the predicted rate."""
        if not self.stable or self.rate <= 0:
            return math.inf
        return max(0.0, math.log(initial / tol) / self.rate)

    def to_dict(self) -> dict:
        return asdict(self)


def grounded_spectrum(arrays: GraphArrays, anchor: int, coupling: float = 1.0) -> np.ndarray:
    """Eigenvalues of M^-1 L_g restricted to the agents that can hear the anchor.

    Agents that cannot hear it sit on zero eigenvalues: they never converge, and are
    left out so that the rate describes the ones that do.
    """
    if arrays.n_nodes > MAX_DENSE_AGENTS:
        raise ValueError(f"{arrays.n_nodes} agents: dense spectrum limited to {MAX_DENSE_AGENTS}")
    lap = grounded_laplacian(arrays, anchor, coupling)
    keep = np.delete(reachable_from_anchor(arrays, anchor), anchor)
    lap = lap[np.ix_(keep, keep)]
    if lap.size == 0:
        return np.zeros(0)
    if not arrays.directed:
        # M^-1 L is similar to the symmetric M^-1/2 L M^-1/2: real spectrum, stable solver.
        m = np.delete(arrays.inertia, anchor)[keep]
        s = np.sqrt(m)
        return np.linalg.eigvalsh((lap * s[:, None]) / s[None, :])
    return np.sort_complex(np.linalg.eigvals(lap))


def predicted_rate(arrays: GraphArrays, anchor: int, coupling: float, step_size: float) -> RatePrediction:
    """The linear convergence rate of the ``gradient`` rule with step size ``step_size``."""
    lam = grounded_spectrum(arrays, anchor, coupling)
    if lam.size == 0:
        return RatePrediction(0.0, 0.0, 1.0, 0.0, False)
    rho = float(np.max(np.abs(1.0 - step_size * lam)))
    return RatePrediction(
        lambda_min=float(np.min(lam.real)),
        lambda_max=float(np.max(lam.real)),
        rho=rho,
        rate=-math.log(rho) if rho > 0 else math.inf,
        stable=rho < 1.0,
    )
