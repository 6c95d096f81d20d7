"""A fitted model as an object that answers the later questions (statsmodels' ``Results``):
its parameters and their intervals, the information criteria, its scores, ``forecast(h)`` and
``simulate(key, rounds)``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.theory.fitting.models import Model
from hivemind.theory.fitting.panel import Panel
from hivemind.theory.fitting.step import manifold, step

# A decay rate below this (per round) is a constant coupling: its timescale is reported as null.
CONSTANT = 1e-9


def _none_if_nan(v):
    a = np.asarray(v, np.float64)
    if a.ndim == 0:
        return None if np.isnan(a) else float(a)
    return None if np.any(np.isnan(a)) else a.tolist()


@dataclass
class ModelFit:
    """``model`` fitted to ``panel``'s transitions that had weight: what ``fit.json`` says of it."""

    model: Model
    panel: Panel = field(repr=False)
    params: dict  # natural values of the free parameters
    mse: float  # on the fitted transitions
    n_params: int
    information: dict  # log_likelihood, aic, bic
    intervals: dict = field(default_factory=dict)
    clustered_by: str = "discussions"
    scores: dict = field(default_factory=dict)  # "cv", "one_step", "validation"; "heldout" for the chosen model
    bse: dict = field(default_factory=dict)  # standard errors of the natural parameters (None: not identified)

    def conf_int(self, alpha: float = 0.1) -> dict:
        """Two-sided (1 - ``alpha``) intervals of every parameter with a standard error, from the
        same sandwich as ``intervals`` (statsmodels' ``conf_int``); positive parameters are cut at 0."""
        from hivemind.theory.fitting.estimate import z_of
        from hivemind.theory.fitting.params import TABLE

        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        z = z_of(1 - alpha)
        out = {}
        for name, se in self.bse.items():
            if se is None:
                out[name] = None
                continue
            v, se = np.asarray(self.params[name], np.float64), np.asarray(se)
            lo, hi = v - z * se, v + z * se
            if TABLE[name].constraint == "positive":
                lo = np.maximum(lo, 0.0)
            out[name] = (lo.tolist(), hi.tolist()) if lo.ndim else (float(lo), float(hi))
        return out

    def summary(self) -> str:
        """A table a person reads: each parameter, its standard error and 90 % interval, then the
        information criteria and the scores."""
        ci = self.conf_int(0.1)
        lines = [f"{self.model.name}: {self.n_params} free parameters, fitted transitions' MSE {self.mse:.5g}"]
        lines.append(f"  {'parameter':<22}{'estimate':>12}{'std err':>12}{'90% interval':>28}")
        for name, v in self.params.items():
            a = np.ravel(np.asarray(v, np.float64))
            if a.size > 1:
                lines.append(f"  {name:<22}{'(' + str(a.size) + ' numbers)':>12}")
                continue
            se = self.bse.get(name)
            iv = ci.get(name)
            se_text = "-" if se is None else f"{float(se):.4g}"
            iv_text = (
                "not identified" if name in self.bse and iv is None else "-" if iv is None else f"[{iv[0]:.4g}, {iv[1]:.4g}]"
            )
            lines.append(f"  {name:<22}{a[0]:>12.4g}{se_text:>12}{iv_text:>28}")
        lines.append(f"  noise {self.noise:.4g}; AIC {self.information['aic']:.1f}, BIC {self.information['bic']:.1f}")
        for which, sc in self.scores.items():
            if sc.get("skill_vs_persistence") is not None:
                lines.append(
                    f"  {which}: skill vs persistence {sc['skill_vs_persistence']:+.3f} on {sc.get('transitions')} transitions"
                )
        return "\n".join(lines)

    @property
    def noise(self) -> float:
        """The innovations' standard deviation per dimension."""
        return math.sqrt(max(self.mse / self.panel.dof, 0.0))

    @property
    def _kinds(self) -> tuple[str, ...]:
        """The kinds of tie by name: a panel of one kind calls it "all"."""
        return self.panel.kinds or ("all",)

    def _by_pair(self, v) -> dict:
        """A matrix by (receiver's group, sender's group) as {receiver: {sender: value}}."""
        m = np.asarray(v, np.float64)
        return {r: {c: float(m[i, j]) for j, c in enumerate(self.panel.groups)} for i, r in enumerate(self.panel.groups)}

    def named(self) -> dict:
        """The parameters for people: plain numbers, the peer coupling's timescale in rounds
        (null for a constant coupling), the attractors named by their group, and the noise."""
        out = {}
        values = dict(self.params)
        if "attractor_drift" in values:
            gamma = float(values["attractor_coupling"])
            drift = np.asarray(values["attractor_drift"])
            values["attractor"] = drift / gamma if gamma > CONSTANT else np.full(drift.shape, np.nan)
        for name, v in values.items():
            if name == "group_coupling":
                out[name] = self._by_pair(v)
            elif name == "edge_coupling":
                out[name] = {k: float(x) for k, x in zip(self._kinds, np.ravel(v), strict=True)}
            elif name in ("attractor", "attractor_drift") and self.model.by:
                out[name] = {g: _none_if_nan(v[i]) for i, g in enumerate(self.panel.groups)}
            else:
                out[name] = _none_if_nan(v)
        if "coupling_decay" in out:
            rate = out["coupling_decay"]
            out["coupling_timescale"] = None if rate < CONSTANT else 1.0 / rate
        out["noise"] = self.noise
        return out

    def named_intervals(self) -> dict:
        out = {}
        for name, iv in self.intervals.items():
            if iv is None:
                out[name] = None
                continue
            lo, hi = iv
            if name == "group_coupling":
                groups = self.panel.groups
                out[name] = {r: {c: [lo[i][j], hi[i][j]] for j, c in enumerate(groups)} for i, r in enumerate(groups)}
            elif name == "edge_coupling":
                out[name] = {k: [lo[i], hi[i]] for i, k in enumerate(self._kinds)}
            elif name in ("attractor", "attractor_drift") and self.model.by:
                out[name] = {g: [lo[i], hi[i]] for i, g in enumerate(self.panel.groups)}
            else:
                out[name] = [lo, hi]
        if self.intervals.get("coupling_decay") is not None:
            lo, hi = self.intervals["coupling_decay"]
            out["coupling_timescale"] = [1.0 / hi if hi > CONSTANT else None, 1.0 / lo if lo > CONSTANT else None]
        return out

    def _jax_params(self) -> dict:
        return {k: jnp.asarray(v) for k, v in self.params.items()}

    def forecast(self, h: int) -> np.ndarray:
        """Every agent's state 1..``h`` rounds after its last observed round, noise-free: (h, N, D)."""
        a = self.panel.arrays
        last = a.valid.shape[0] - 1 - np.argmax(a.valid[::-1], axis=0)
        x0 = a.y[last, np.arange(a.y.shape[1])]
        with jax.enable_x64(True):
            p, arrays = self._jax_params(), type(a)(*(jnp.asarray(v) for v in a))
            ones = jnp.ones(x0.shape[0], bool)

            def body(x, t):
                x = step(self.panel.space, self.model, p, arrays, x, ones, t)
                return x, x

            # Each agent's own clock is its last round; a shared clock (the latest) is the
            # approximation for discussions of different lengths.
            _, xs = jax.lax.scan(body, jnp.asarray(x0), jnp.arange(int(last.max()), int(last.max()) + h, dtype=jnp.float64))
            return np.asarray(xs)

    def trajectory(self, rounds: int | None = None) -> np.ndarray:
        """The fitted model run on its own from the observed round 0, noise-free, ``rounds`` steps
        (default: as observed): what it says the discussion does when nothing else is known.
        (rounds + 1, N, D)."""
        a = self.panel.arrays
        rounds = a.y.shape[0] - 1 if rounds is None else rounds
        with jax.enable_x64(True):
            p, arrays = self._jax_params(), type(a)(*(jnp.asarray(v) for v in a))
            ones = jnp.ones(a.y.shape[1], bool)

            def body(x, t):
                x = step(self.panel.space, self.model, p, arrays, x, ones, t)
                return x, x

            _, xs = jax.lax.scan(body, jnp.asarray(a.y[0]), jnp.arange(rounds, dtype=jnp.float64))
            return np.concatenate([a.y[:1], np.asarray(xs)])

    def simulate(self, key: jax.Array, rounds: int | None = None, noise: float | None = None) -> np.ndarray:
        """Discussions drawn from the fit: from the observed round 0, ``rounds`` steps (default:
        as observed), each followed by Gaussian noise of ``noise`` per dimension (default: the
        fit's), in the tangent space on the sphere. (rounds + 1, N, D)."""
        a = self.panel.arrays
        rounds = a.y.shape[0] - 1 if rounds is None else rounds
        sigma = self.noise if noise is None else noise
        m = manifold(self.panel.space, a.y.shape[-1])
        with jax.enable_x64(True):
            p, arrays = self._jax_params(), type(a)(*(jnp.asarray(v) for v in a))
            ones = jnp.ones(a.y.shape[1], bool)

            def body(x, inputs):
                k, t = inputs
                x = step(self.panel.space, self.model, p, arrays, x, ones, t)
                x = m.exp(x, sigma * m.proj(x, jax.random.normal(k, x.shape, x.dtype)))
                return x, x

            keys = jax.random.split(key, rounds)
            x0 = jnp.asarray(a.y[0])
            _, xs = jax.lax.scan(body, x0, (keys, jnp.arange(rounds, dtype=jnp.float64)))
            return np.concatenate([a.y[:1], np.asarray(xs)])

    def to_json(self) -> dict:
        out = {
            "mechanisms": {
                "peer": self.model.peer,
                "decay": self.model.decay,
                "anchor": "anchor_coupling" in self.params,
                "stubbornness": self.model.stubborn,
                "attractor": (f"by {self.model.by}" if self.model.by else "one") if self.model.attractor else None,
                "confidence": self.model.confidence,
                "group_couplings": f"by {self.model.by}" if self.model.base == "groups" else None,
                "edge_couplings": "by kind of tie" if self.model.base == "edges" else None,
            },
            "params": self.named(),
            "intervals": self.named_intervals(),
            "intervals_clustered_by": self.clustered_by,
            "n_params": self.n_params,
            "train_mse": self.mse,
        }
        out |= self.information
        out |= self.scores
        return out
