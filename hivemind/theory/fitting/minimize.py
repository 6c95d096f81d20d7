"""L-BFGS on the host over a compiled ``jax.value_and_grad``: the fitters' optimiser.

The fits used to run optax's L-BFGS inside one ``jax.jit``: its zoom line search traces the
loss (a scan over the rounds) several times more, and XLA compiles all of it for every data
shape. The first fj fit of 12 agents took 27 s that way on this 2-core machine under load, and
10 s with the loop here, where only the loss and its gradient are compiled; the iterations
themselves take a fraction of a second. Same method (L-BFGS-B in scipy), same optimum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.optimize

# L-BFGS's memory, as optax's default.
MEMORY = 10


def lbfgs(value_and_grad: Callable, theta, iterations: int, tolerance: float) -> np.ndarray:
    """``theta`` minimising the loss whose ``value_and_grad(theta) -> (value, grad)`` is given,
    until every gradient component is below ``tolerance`` or after ``iterations`` steps.

    No stop on a small relative decrease (``ftol=0``): a coupling whose best value is 0 has no
    finite optimum in softplus coordinates and keeps creeping down while the loss barely
    moves; it stops where the gradient, softplus(theta) times the loss's slope, is below the
    tolerance, or where the line search can decrease the loss no further.
    """

    def fun(x):
        value, grad = value_and_grad(x)
        return float(value), np.asarray(grad, np.float64)

    options = {"maxiter": iterations, "gtol": tolerance, "ftol": 0.0, "maxcor": MEMORY}
    res = scipy.optimize.minimize(fun, np.asarray(theta, np.float64), jac=True, method="L-BFGS-B", options=options)
    return res.x
