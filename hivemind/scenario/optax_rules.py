"""Which optax optimizers can drive a run: built and stepped once, so that a bad name or
option is a one-line scenario error and never a traceback mid-run.

optax (and so jax) is imported inside the functions: a scenario that names a built-in rule
is read and validated without loading jax.
"""

from __future__ import annotations

from hivemind.scenario.names import BUILTIN_RULES


def optax_optimizer(name: str, learning_rate, options: dict):
    """``optax.<name>(learning_rate, **options)``, with a clear error for unknown names."""
    import optax

    factory = getattr(optax, name, None)
    if factory is None or not callable(factory):
        raise ValueError(f"unknown rule {name!r}: not {BUILTIN_RULES} nor an optax optimizer")
    return factory(learning_rate, **options)


def optimizer_problem(name: str, options: dict) -> str | None:
    """Why ``optax.<name>`` with ``options`` cannot drive a run, or None if it can.

    Builds the optimizer as the engine will (a traced learning rate, float options as
    arrays), initialises it on a tiny array and applies three updates of one gradient:
    it must accept that and move against the gradient. That tells an optimizer factory
    from the rest of the optax namespace (``apply_updates``, ``GradientTransformation``,
    ``scale``, ``clip``, ...), whose traceback would otherwise surface mid-run.
    """
    import math
    import warnings

    import jax
    import jax.numpy as jnp

    params = jnp.ones((2, 3), jnp.float32)
    grad = jnp.full((2, 3), 0.5, jnp.float32)
    opts = {k: jnp.asarray(v, jnp.float32) if isinstance(v, float) else v for k, v in options.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizer = optax_optimizer(name, jnp.asarray(0.01, jnp.float32), opts)
            if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
                return f"returns {type(optimizer).__name__}, not an optimizer"
            state = optimizer.init(params)
            descent = 0.0
            for _ in range(3):
                updates, state = optimizer.update(grad, state, params)
                descent += float(jnp.sum(jnp.asarray(updates, jnp.float32) * grad))
        # The engine passes the learning rate and float options as traced values: Python
        # control flow on them (``if nesterov:``) only fails under tracing, so trace it too.
        floats = {k: v for k, v in opts.items() if isinstance(options[k], float)}

        def traced(lr, traced_floats):
            optimizer = optax_optimizer(name, lr, opts | traced_floats)
            state = optimizer.init(params)
            return optimizer.update(grad, state, params)[0]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jax.eval_shape(traced, jnp.asarray(0.01, jnp.float32), floats)
    except Exception as e:  # anything optax raises for a bad name or option: reported, not a traceback
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        text = text if len(text) <= 100 else text[:97] + "..."
        return f"fails: {type(e).__name__}{': ' + text if text else ''}"
    if not math.isfinite(descent):
        return "gives a non-finite update"
    if descent >= 0:
        return "does not move against the gradient (a transformation, not an optimizer)"
    return None
