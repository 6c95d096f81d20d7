"""The fused pair kernel: the pull of every receiver in one pass, as an XLA custom call (``jax.ffi``).

``pull.cc`` is compiled by the project's set-up (``python -m hivemind.engine.fused``, which
``make`` runs after installing) into ``_lib/`` beside this file. Where it was not built, or
cannot be loaded, ``status()`` says why in one line and the engine keeps its pure-JAX kernel,
which stays the oracle and the GPU path. Gradients go through the pure-JAX kernel (a
``custom_vjp``), so a fused forward pass can still be differentiated.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "pull.cc"
LIBRARY = HERE / "_lib" / "libhivemind_pull.so"
MANIFOLDS = {"euclidean": 0, "sphere": 1, "hyperbolic": 2}
TARGETS = {np.dtype(np.float32): "hivemind_pull_f32", np.dtype(np.float64): "hivemind_pull_f64"}


def compile_flags() -> list[str]:
    """The CPU it is built on, without AMX: in VMs that do not grant AMX's register state its
    first use segfaults (the same care as the llama.cpp build in the Makefile)."""
    # -fopenmp-simd: the chunk loops' "omp simd" (no OpenMP runtime); -fno-math-errno lets sqrt vectorise.
    flags = ["-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fopenmp-simd", "-fno-math-errno"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags += ["-march=native", "-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]
    return flags


def build(library: Path = LIBRARY) -> tuple[bool, str]:
    """Compile ``pull.cc`` with the C++ compiler ($CXX, else g++ or c++): (built, one line saying what happened)."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        return False, "no C++ compiler found (set CXX): the engine uses its pure-JAX kernel"
    library.parent.mkdir(parents=True, exist_ok=True)
    tmp = library.with_suffix(".so.tmp")
    cmd = [compiler, *compile_flags(), f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"the fused kernel could not be compiled ({e.__class__.__name__}): the engine uses its pure-JAX kernel"
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:200])
        tmp.unlink(missing_ok=True)
        return False, f"the fused kernel did not compile ({first.strip()}): the engine uses its pure-JAX kernel"
    os.replace(tmp, library)
    return True, f"built the fused pair kernel: {library}"


def status() -> tuple[bool, str]:
    """(usable, why): loads the library and registers its two targets with XLA, once per file."""
    return _load(LIBRARY)


@functools.cache
def _load(library: Path) -> tuple[bool, str]:
    if not library.is_file():
        return False, "the fused kernel is not built (python -m hivemind.engine.fused builds it): using the pure-JAX kernel"
    if SOURCE.is_file() and SOURCE.stat().st_mtime > library.stat().st_mtime:
        # pull.cc changed since the build (a git pull, an edit): what would run is not what it says.
        why = "the fused kernel is older than pull.cc (make, or python -m hivemind.engine.fused, rebuilds it)"
        return False, why + ": using the pure-JAX kernel"
    try:
        lib = ctypes.cdll.LoadLibrary(str(library))
        for symbol, name in (
            ("HivemindPullF32", "hivemind_pull_f32"),
            ("HivemindPullF64", "hivemind_pull_f64"),
            ("HivemindDistF32", "hivemind_dist_f32"),
            ("HivemindDistF64", "hivemind_dist_f64"),
        ):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except (OSError, AttributeError) as e:
        return False, f"the fused kernel cannot be loaded ({e.__class__.__name__}): using the pure-JAX kernel"
    return True, "fused"


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


def main() -> int:
    ok, line = build()
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0  # a failed build is not a failed install: the engine falls back, and says so


if __name__ == "__main__":
    raise SystemExit(main())
