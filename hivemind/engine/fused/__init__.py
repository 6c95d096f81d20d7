"""The fused pair kernel: the pull of every receiver in one pass, as an XLA custom call (``jax.ffi``).

``pull.cc`` is compiled by the package build (scikit-build-core and CMake, ``CMakeLists.txt``
at the repository's root) into ``_lib/`` beside this file: by default one library per x86-64
level (baseline, v3, v4), of which the best this CPU runs is loaded; with ``HIVEMIND_NATIVE=1``
at build time one library for the CPU it was built on. ``_lib/build.json`` says which build it
is and the SHA-256 of the ``pull.cc`` it came from. Nothing is compiled or written at run time.
Where no library matches this ``pull.cc`` (a checkout that was not installed, an install
without a compiler, a source edited since), ``status()`` says why in one line and the engine
keeps its pure-JAX kernel, which stays the oracle and the GPU path. Gradients go through the
pure-JAX kernel (a ``custom_vjp``), so a fused forward pass can still be differentiated.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "pull.cc"
MANIFOLDS = {"euclidean": 0, "sphere": 1, "hyperbolic": 2}
TARGETS = {np.dtype(np.float32): "hivemind_pull_f32", np.dtype(np.float64): "hivemind_pull_f64"}
# HivemindCpuLevel's answer -> the portable library built for it.
LEVELS = {4: "x86-64-v4", 3: "x86-64-v3", 1: "x86-64", 0: "generic"}
# A folder holding a build.json (a kernel built elsewhere, e.g. benchmarks/fused.py's native build).
ENV_DIR = "HIVEMIND_KERNEL_DIR"


@dataclass(frozen=True)
class Build:
    """What the package build left in one ``_lib`` folder (its ``build.json``)."""

    folder: Path
    kind: str  # "portable", "native", or "none" (installed without a compiler)
    variants: tuple[str, ...]
    source_sha256: str
    compiler: str = ""
    git: str = "unknown"  # `git describe` of the checkout it was built from

    @classmethod
    def read(cls, folder: Path) -> Build | None:
        try:
            doc = json.loads((folder / "build.json").read_text())
            kind, variants, sha = doc["build"], tuple(doc["variants"]), doc["source_sha256"]
            return cls(folder, kind, variants, sha, doc.get("compiler", ""), doc.get("git", "unknown"))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _folders() -> list[Path]:
    """Where a build may be: $HIVEMIND_KERNEL_DIR, beside this file (an installed wheel), then
    wherever the installed distribution put its files (an editable install keeps the source here
    and the built libraries in site-packages), whichever copy of the source Python imported."""
    found = [Path(os.environ[ENV_DIR])] if os.environ.get(ENV_DIR) else []
    found.append(HERE / "_lib")
    # Every distribution of that name on sys.path (a checkout's stale egg-info may come first).
    files = [f for dist in metadata.distributions(name="hivemind") for f in dist.files or []]
    found += [Path(f.locate()).parent for f in files if f.name == "build.json" and f.parent.name == "_lib"]
    return list(dict.fromkeys(p.resolve() for p in found))


@functools.cache
def _source_sha256() -> str | None:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest() if SOURCE.is_file() else None


def find_build() -> tuple[Build | None, str]:
    """(the build to load, or None and why in words)."""
    builds = [b for b in map(Build.read, _folders()) if b is not None]
    if not builds:
        return None, "the fused kernel is not built (pip install . or make builds it)"
    want = _source_sha256()
    matching = [b for b in builds if want is None or b.source_sha256 == want]
    if not matching:
        # pull.cc changed since the build (a git pull, an edit): what would run is not what it says.
        return None, "the fused kernel was built from another pull.cc (pip install ., or make, rebuilds it)"
    usable = [b for b in matching if b.kind != "none"]
    if not usable:
        return None, "the fused kernel was not built (no C++ compiler when hivemind was installed)"
    return usable[0], ""


def _library(build: Build) -> Path:
    """The library of ``build`` this CPU runs: the native one, or the best portable level."""
    if build.kind == "native":
        return build.folder / "libhivemind_pull_native.so"
    if "x86-64" in build.variants:
        # Asked of the baseline library, which any x86-64 CPU runs.
        level = ctypes.CDLL(str(build.folder / "libhivemind_pull_x86-64.so")).HivemindCpuLevel()
        return build.folder / f"libhivemind_pull_{LEVELS[level]}.so"
    return build.folder / "libhivemind_pull_generic.so"


def status() -> tuple[bool, str]:
    """(usable, why): loads the library and registers its two targets with XLA, once per process."""
    return _load()


@functools.cache
def _load() -> tuple[bool, str]:
    build, why = find_build()
    if build is None:
        return False, why + ": using the pure-JAX kernel"
    try:
        lib = ctypes.CDLL(str(_library(build)))
        for symbol, name in (
            ("HivemindPullF32", "hivemind_pull_f32"),
            ("HivemindPullF64", "hivemind_pull_f64"),
            ("HivemindDistF32", "hivemind_dist_f32"),
            ("HivemindDistF64", "hivemind_dist_f64"),
        ):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except (OSError, AttributeError, KeyError) as e:
        return False, f"the fused kernel cannot be loaded ({e.__class__.__name__}): using the pure-JAX kernel"
    return True, "fused"


def describe() -> str:
    """Which build of the kernel this process uses, in a few words (``hivemind --version``,
    manifest.json): "portable, x86-64-v3 chosen for this CPU", "native (GNU 12.2.0)", or why none."""
    build, why = find_build()
    if build is None:
        return f"none ({why})"
    if build.kind == "native":
        return f"native ({build.compiler})" if build.compiler else "native"
    try:
        chosen = _library(build).stem.removeprefix("libhivemind_pull_")
    except (OSError, AttributeError, KeyError):
        return "portable (cannot be loaded here)"
    return f"portable, {chosen} chosen for this CPU"


THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _as_batch(states):
    """states as the kernels' (N, B, D), a single run as B = 1; the targets registered with XLA first."""
    ok, why = status()  # registers the targets with XLA on first use
    if not ok:
        raise RuntimeError(why)
    return states.reshape(states.shape[0], 1, states.shape[-1]) if states.ndim == 2 else states


def _call(kind: str, bounded: bool, states, senders, receivers, weights, confidence):
    x = _as_batch(states)
    n, b, d = x.shape
    e = senders.shape[0]
    if e == 0:  # nobody hears anybody: nothing to call
        force, heard = jnp.zeros((n, b, d), x.dtype), jnp.zeros((n, b), x.dtype)
        return (force[:, 0], heard[:, 0]) if states.ndim == 2 else (force, heard)
    w = weights.reshape(e, -1).astype(x.dtype)
    c = jnp.reshape(jnp.asarray(confidence, x.dtype), (-1,))
    out = (jax.ShapeDtypeStruct((n, b, d), x.dtype), jax.ShapeDtypeStruct((n, b), x.dtype))
    force, heard = jax.ffi.ffi_call(TARGETS[np.dtype(x.dtype)], out)(
        x,
        senders.astype(jnp.int32),
        receivers.astype(jnp.int32),  # sorted: the kernel finds each thread's receivers by bisection
        w,
        c,
        manifold=np.int64(MANIFOLDS[kind]),
        bounded=np.int64(bounded),
        threads=np.int64(THREADS),
    )
    if states.ndim == 2:
        return force[:, 0], heard[:, 0]
    return force, heard


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def pull(kind: str, bounded: bool, reference, states, senders, receivers, weights, confidence):
    """(force, heard) of ``hivemind.engine.energy``'s pull, fused; states (N, D) or agents-first
    (N, B, D) with weights (E,) or (E, B). ``reference`` is the pure-JAX kernel with the same
    arguments: the backward pass differentiates it."""
    return _call(kind, bounded, states, senders, receivers, weights, confidence)


def _fwd(kind, bounded, reference, states, senders, receivers, weights, confidence):
    return _call(kind, bounded, states, senders, receivers, weights, confidence), (
        states,
        senders,
        receivers,
        weights,
        confidence,
    )


def _bwd(kind, bounded, reference, saved, cotangent):
    states, senders, receivers, weights, confidence = saved
    _, vjp = jax.vjp(lambda s, w, c: reference(s, senders, receivers, w, c), states, weights, confidence)
    ds, dw, dc = vjp(cotangent)
    zeros = lambda a: np.zeros(a.shape, jax.dtypes.float0)  # noqa: E731  integer inputs have no tangent
    return ds, zeros(senders), zeros(receivers), dw, dc


pull.defvjp(_fwd, _bwd)


DIST_TARGETS = {np.dtype(np.float32): "hivemind_dist_f32", np.dtype(np.float64): "hivemind_dist_f64"}


def _distances(kind: str, states, first, second):
    x = _as_batch(states)
    p = first.shape[0]
    if p == 0:  # no pairs (a sample of one agent): nothing to call
        d = jnp.zeros((0, x.shape[1]), x.dtype)
    else:
        d = jax.ffi.ffi_call(DIST_TARGETS[np.dtype(x.dtype)], jax.ShapeDtypeStruct((p, x.shape[1]), x.dtype))(
            x,
            first.astype(jnp.int32),
            second.astype(jnp.int32),
            manifold=np.int64(MANIFOLDS[kind]),
            threads=np.int64(THREADS),
        )
    return d[:, 0] if states.ndim == 2 else d


@functools.cache
def _vmappable_distances(kind: str):
    @custom_vmap
    def one(states, first, second):
        return _distances(kind, states, first, second)

    @one.def_vmap
    def batched(axis_size, in_batched, states, first, second):
        s_b, a_b, b_b = in_batched
        if a_b or b_b:  # different pairs per run: the generic way
            axes = (0 if s_b else None, 0 if a_b else None, 0 if b_b else None)
            return jax.vmap(functools.partial(_distances, kind), in_axes=axes)(states, first, second), True
        x = states if s_b else jnp.broadcast_to(states, (axis_size, *states.shape))
        d = _distances(kind, jnp.moveaxis(x, 0, 1), first, second)  # runs as the kernel's batch axis
        return jnp.moveaxis(d, 1, 0), True

    return one


def distances(kind: str, states, first, second):
    """d(x[first[p]], x[second[p]]) for every pair p, by the manifold's own formula (``dist``):
    states (N, D) -> (P,), or agents-first (N, B, D) -> (P, B). Under ``jax.vmap`` over runs
    the runs become the kernel's batch axis. No gradient: it serves the records."""
    return _vmappable_distances(kind)(states, first, second)
