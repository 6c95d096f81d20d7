"""Linear theory of anchored consensus: the grounded Laplacian and the rates it predicts.

Near the anchor every manifold looks like its tangent space, and the ``gradient`` rule
becomes the linear iteration e_{t+1} = (I - eta M^-1 L_g) e_t on the displacements
e = Log_a(x). The iteration contracts at rate rho = max_i |1 - eta lambda_i| over the
eigenvalues lambda_i of M^-1 L_g: exactly on R^n, asymptotically on S^n and H^n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hivemind.engine.topology import GraphArrays, laplacian, reachable_from_anchor
from hivemind.io.records import anchor_indices, graph_arrays_of, mobile_mask

# Steps read at a time when averaging a long run's distances.
STEP_BLOCK_BYTES = 64 * 2**20

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


def grounded_operator(
    arrays: GraphArrays,
    anchors: int | Sequence[int],
    couplings: float | Sequence[float] = 1.0,
    stubbornness: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The linear dynamics of the mobile agents: (A, B, mobile).

    Near a fixed point (exactly, on R^n) the ``gradient`` rule's drift is
    -(A x_mobile - B x_anchors - Theta p): A = (I - Theta) M^-1 L_g + Theta, with L_g the
    Laplacian restricted to the mobile agents, B = (I - Theta) M^-1 times the columns of
    -L that belong to the anchors, and Theta the diagonal of stubbornness. ``mobile`` is
    the boolean mask of the agents A acts on.
    """
    n = arrays.n_nodes
    idx = np.atleast_1d(np.asarray(anchors))
    lap = laplacian(arrays, idx, couplings)
    mobile = np.ones(n, dtype=bool)
    mobile[idx] = False
    theta = np.zeros(n) if stubbornness is None else np.asarray(stubbornness, float)
    t = theta[mobile]
    a = (1.0 - t)[:, None] * lap[np.ix_(mobile, mobile)] + np.diag(t)
    b = -(1.0 - t)[:, None] * lap[np.ix_(mobile, ~mobile)]
    return a, b, mobile


def grounded_spectrum(
    arrays: GraphArrays,
    anchor: int | Sequence[int],
    coupling: float | Sequence[float] = 1.0,
    stubbornness: np.ndarray | None = None,
) -> np.ndarray:
    """Eigenvalues of the grounded operator A (M^-1 L_g without stubbornness) over the agents that settle.

    Agents that hear no anchor and are not stubborn sit on zero eigenvalues: they never
    converge, and are left out so that the rate describes the ones that do.
    """
    if arrays.n_nodes > MAX_DENSE_AGENTS:
        raise ValueError(f"{arrays.n_nodes} agents: dense spectrum limited to {MAX_DENSE_AGENTS}")
    op, _, mobile = grounded_operator(arrays, anchor, coupling, stubbornness)
    settles = reachable_from_anchor(arrays, anchor)[mobile]
    if stubbornness is not None:
        settles |= np.asarray(stubbornness, float)[mobile] > 0
    op = op[np.ix_(settles, settles)]
    if op.size == 0:
        return np.zeros(0)
    if not arrays.directed and (stubbornness is None or not np.any(stubbornness)):
        # M^-1 L is similar to the symmetric M^-1/2 L M^-1/2: real spectrum, stable solver.
        m = arrays.inertia[mobile][settles]
        s = np.sqrt(m)
        return np.linalg.eigvalsh((op * s[:, None]) / s[None, :])
    return np.sort_complex(np.linalg.eigvals(op))


def predicted_rate(
    arrays: GraphArrays,
    anchor: int | Sequence[int],
    coupling: float | Sequence[float],
    step_size: float,
    stubbornness: np.ndarray | None = None,
) -> RatePrediction:
    """The linear convergence rate of the ``gradient`` rule with step size ``step_size``."""
    lam = grounded_spectrum(arrays, anchor, coupling, stubbornness)
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


def linear_equilibrium(
    arrays: GraphArrays,
    anchors: int | Sequence[int],
    couplings: float | Sequence[float],
    x0: np.ndarray,
    stubbornness: np.ndarray | None = None,
) -> np.ndarray:
    """Where the ``gradient`` rule ends on R^n: one linear solve, A x* = B x_anchors + Theta p.

    With anchors alone this is the harmonic extension of the anchors' states (each
    agent at the weighted mean of its neighbours); with stubbornness it is the
    Friedkin–Johnsen equilibrium x* = (I - (I - Theta) W)^-1 Theta x(0) generalised to
    anchors and inertia. ``x0`` (N, D) gives the anchors' states and the prejudices.
    Agents that settle nowhere (no anchor heard, not stubborn) are NaN.
    """
    x0 = np.asarray(x0, float)
    a, b, mobile = grounded_operator(arrays, anchors, couplings, stubbornness)
    theta = np.zeros(arrays.n_nodes) if stubbornness is None else np.asarray(stubbornness, float)
    rhs = b @ x0[~mobile] + theta[mobile][:, None] * x0[mobile]
    out = x0.copy()
    settles = reachable_from_anchor(arrays, anchors)[mobile] | (theta[mobile] > 0)
    sol = np.full((int(mobile.sum()), x0.shape[1]), np.nan)
    keep = np.ix_(settles, settles)
    sol[settles] = np.linalg.solve(a[keep], rhs[settles])
    out[mobile] = sol
    return out


# Below these mean distances a run is at its precision floor (updates round away), so the
# tail fit ignores them: float32 stalls near ulp / (eta lambda), float64 far lower.
FIT_FLOOR = {"float32": 1e-4, "float64": 1e-10}


@dataclass(frozen=True)
class RateMeasurement:
    """Slope of log(mean distance to the anchor) against steps over the tail of a run."""

    rate: float
    rho: float
    first_step: int
    last_step: int
    points: int
    r2: float

    def to_dict(self) -> dict:
        return asdict(self)


def measured_rate(steps: np.ndarray, mean_distance: np.ndarray, floor: float) -> RateMeasurement | None:
    """Least-squares fit of log d = c - rate * step over the second half of the points above ``floor``.

    The first half is left out because the linear regime holds only near the anchor, once
    the faster modes have died out. Returns None with fewer than 4 usable points.
    """
    ok = np.flatnonzero((mean_distance > floor) & np.isfinite(mean_distance))
    if ok.size < 8:
        return None
    # Contiguous prefix above the floor, then its second half.
    stop = ok[np.flatnonzero(np.diff(ok) != 1)[0]] + 1 if np.any(np.diff(ok) != 1) else ok[-1] + 1
    idx = np.arange(ok[0], stop)
    idx = idx[idx.size // 2 :]
    if idx.size < 4:
        return None
    t, y = steps[idx].astype(float), np.log(mean_distance[idx])
    slope, intercept = np.polyfit(t, y, 1)
    resid = y - (slope * t + intercept)
    r2 = 1.0 - float(resid @ resid) / max(float(((y - y.mean()) ** 2).sum()), 1e-300)
    return RateMeasurement(
        rate=float(-slope), rho=float(np.exp(slope)), first_step=int(t[0]), last_step=int(t[-1]), points=int(idx.size), r2=r2
    )


def prediction_for(ds, arrays: GraphArrays | None = None) -> RatePrediction | None:
    """The predicted rate of a run's Dataset, or None where the theory gives none.

    The theory covers the ``gradient`` rule, and graphs small enough for a dense spectrum.
    """
    if ds.attrs.get("rule") != "gradient" or ds.sizes["agent"] > MAX_DENSE_AGENTS:
        return None
    if np.isfinite(float(ds.attrs.get("confidence", np.inf))) or ds.attrs.get("inertia_kind") == "active":
        return None  # edges switch on and off: no fixed linear operator
    arrays = graph_arrays_of(ds) if arrays is None else arrays
    couplings = ds.anchor_coupling.values if "anchor_coupling" in ds else float(ds.attrs["coupling"])
    theta = ds.stubbornness.values if "stubbornness" in ds else None
    return predicted_rate(arrays, anchor_indices(ds), couplings, float(ds.attrs["step_size"]), theta)


def hearers(ds) -> np.ndarray:
    """Mask over ``agent`` of the agents that can hear an anchor (anchors themselves excluded)."""
    return (ds.reachable.values == 1) & mobile_mask(ds)


def mean_distance_of_hearers(ds) -> np.ndarray:
    """Mean distance to the anchor over seeds and the agents that can hear it, per recorded step."""
    hears = hearers(ds)
    n = ds.sizes["step"]
    if not hears.any():  # nobody hears the anchor: no curve to average, and no warning about it
        return np.full(n, np.nan)
    # Block by block along steps: a run backed by its file may hold more than memory does.
    block = max(1, STEP_BLOCK_BYTES // (ds.sizes["seed"] * ds.sizes["agent"] * 8))
    dist = ds.distance_to_anchor
    return np.concatenate([dist.isel(step=slice(k, k + block)).values[:, :, hears].mean(axis=(0, 2)) for k in range(0, n, block)])


def rate_report(ds, arrays: GraphArrays | None = None) -> dict | None:
    """Predicted against measured rate for a ``gradient`` run's Dataset; None where theory gives none."""
    pred = prediction_for(ds, arrays)
    if pred is None:
        return None
    if _split(ds):  # the run converges to a fixed point away from the anchors: see equilibrium_report
        return {"predicted": pred.to_dict(), "measured": None, "note": "converges to the equilibrium, not to an anchor"}
    mean = mean_distance_of_hearers(ds)
    meas = measured_rate(ds.step.values, mean, FIT_FLOOR.get(ds.attrs.get("precision"), 1e-4))
    out = {"predicted": pred.to_dict(), "measured": meas.to_dict() if meas else None}
    if meas and pred.rate != 0:
        out["relative_error"] = abs(meas.rate - pred.rate) / abs(pred.rate)
    return out


def _split(ds) -> bool:
    """Several anchors or stubborn agents: the gradient rule ends at a fixed point off the anchors."""
    several = "anchor_agent" in ds and ds.sizes.get("anchor", 1) > 1
    stubborn = "stubbornness" in ds and bool(np.any(ds.stubbornness.values > 0))
    return several or stubborn
