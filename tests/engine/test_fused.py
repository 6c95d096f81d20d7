"""The fused C++ pair kernel (hivemind.engine.fused) against the pure-JAX kernel, its oracle:
values and gradients on every manifold, with and without a confidence bound, batched runs on one
graph, float32 and float64, whole runs, and the one-line fallback where it cannot be built."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hivemind.engine import fused
from hivemind.engine.energy import _pull
from hivemind.engine.manifolds import get_manifold
from tests.helpers import scenario

N, E = 60, 400


def graph(seed=0):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, N, E), rng.integers(0, N, E)
    order = np.argsort(dst, kind="stable")
    return jnp.asarray(src[order], jnp.int32), jnp.asarray(dst[order], jnp.int32), rng


def points(kind, dim, n, key, dtype):
    m = get_manifold(kind, dim)
    x = m.random_point(jax.random.key(key), (n,), dtype=dtype)
    return m, (0.7 * x if kind == "euclidean" else x)


def both(m, kind, bounded, senders, receivers):
    ref = jax.jit(lambda s, w, c: _pull(m, bounded, s, senders, receivers, w, c))
    reference = functools.partial(_pull, m, bounded)
    fz = jax.jit(lambda s, w, c: fused.pull(kind, bounded, reference, s, senders, receivers, w, c))
    return ref, fz


def close(a, b, dtype):
    # Summation order differs (one receiver's edges in sequence against XLA's segment sum):
    # equal to rounding, relative to the size of what is summed.
    tol = 2e-5 if dtype == jnp.float32 else 1e-12
    scale = max(1.0, float(jnp.max(jnp.abs(a))))
    return float(jnp.max(jnp.abs(a - b))) <= tol * scale


@pytest.mark.parametrize(
    "kind, dim, bounded, dtype",
    [
        ("sphere", 4, False, jnp.float32),
        ("sphere", 4, True, jnp.float64),
        ("hyperbolic", 3, False, jnp.float64),
        ("hyperbolic", 3, True, jnp.float32),
        ("euclidean", 5, False, jnp.float32),
        ("euclidean", 5, True, jnp.float64),
    ],
    ids=[
        "sphere-f32",
        "sphere-bounded-f64",
        "hyperbolic-f64",
        "hyperbolic-bounded-f32",
        "euclidean-f32",
        "euclidean-bounded-f64",
    ],
)
def test_the_fused_pull_equals_the_pure_jax_pull(kind, dim, bounded, dtype):
    senders, receivers, rng = graph()
    m, x = points(kind, dim, N, 1, dtype)
    w = jnp.asarray(rng.uniform(0.2, 2.0, E), dtype)
    c = jnp.asarray(0.9 if bounded else np.inf, dtype)
    ref, fz = both(m, kind, bounded, senders, receivers)
    (fa, ha), (fb, hb) = ref(x, w, c), fz(x, w, c)
    assert fb.dtype == dtype and close(fa, fb, dtype) and close(ha, hb, dtype)
    if bounded:  # the bound really cuts edges here, and the same ones
        assert 0 < float(jnp.sum(hb)) < float(jnp.sum(w))
    # A batch of runs on one graph, agents-first: (N, B, D), weights per run.
    _, x2 = points(kind, dim, N, 2, dtype)
    xb, wb = jnp.stack([x, x2], 1), jnp.stack([w, 0.5 * w], 1)
    (fa, ha), (fb, hb) = ref(xb, wb, c), fz(xb, wb, c)
    assert fb.shape == xb.shape and close(fa, fb, dtype) and close(ha, hb, dtype)


@pytest.mark.parametrize(
    "kind, dim, dtype",
    [
        ("sphere", 15, jnp.float32),  # 16 coordinates: one vector of 2^k lanes
        ("sphere", 16, jnp.float32),  # 17: 2^k lanes and one coordinate more (S^n, H^n in R^{n+1})
        ("hyperbolic", 8, jnp.float64),  # 9, the time coordinate first
        ("hyperbolic", 32, jnp.float32),  # 33: two AVX-512 registers and one more
        ("euclidean", 8, jnp.float64),
        ("sphere", 5, jnp.float32),  # 6: no vector form, the plain loops
    ],
)
def test_every_coordinate_layout_of_the_kernel_equals_the_pure_jax_pull(kind, dim, dtype):
    """The kernel has vector code for 2^k and 2^k + 1 coordinates and loops for the rest: each
    against the oracle, with a bound that cuts some edges."""
    senders, receivers, rng = graph(2)
    m, x = points(kind, dim, N, 4, dtype)
    if kind == "hyperbolic":  # a narrower wrapped normal: standard ones on H^32 lie ~15 apart, past float32
        o = jnp.broadcast_to(m.origin(dtype), x.shape)
        x = m.exp(o, 0.2 * m.random_tangent(jax.random.key(4), o))
    w = jnp.asarray(rng.uniform(0.2, 2.0, E), dtype)
    # A bound halfway between two distances that occur: no edge sits on it, where the two kernels'
    # last bits could decide differently.
    d = np.unique(np.asarray(m.dist(x[receivers], x[senders])))
    c = jnp.asarray((d[len(d) // 2 - 1] + d[len(d) // 2]) / 2, dtype)
    ref, fz = both(m, kind, True, senders, receivers)
    (fa, ha), (fb, hb) = ref(x, w, c), fz(x, w, c)
    assert close(fa, fb, dtype) and close(ha, hb, dtype) and 0 < float(jnp.sum(hb)) < float(jnp.sum(w))


def test_the_kernel_split_over_threads_equals_it_on_one(monkeypatch):
    """Receivers split into parts at receiver boundaries, run on XLA's thread pool and the calling
    thread: the same sums, bitwise (each receiver's edges are still summed in order by one thread),
    and equal to the oracle, on a scale-free graph whose hubs make the parts uneven."""
    import networkx as nx

    g = nx.barabasi_albert_graph(3000, 3, seed=0)
    edges = np.array([(a, b) for a, b in g.edges()] + [(b, a) for a, b in g.edges()])
    edges = edges[np.argsort(edges[:, 1], kind="stable")]
    senders, receivers = jnp.asarray(edges[:, 0], jnp.int32), jnp.asarray(edges[:, 1], jnp.int32)
    m, x = points("sphere", 16, 3000, 5, jnp.float32)
    xb = jnp.stack([x, m.random_point(jax.random.key(6), (3000,))], 1)  # two runs: (N, 2, 17)
    w = jnp.ones(senders.shape, jnp.float32)
    c = jnp.asarray(np.inf, jnp.float32)
    reference = functools.partial(_pull, m, False)
    out = {}
    for threads in (1, 3):
        monkeypatch.setattr(fused, "THREADS", threads)
        out[threads] = jax.jit(lambda s: fused.pull("sphere", False, reference, s, senders, receivers, w, c))(xb)
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(out[1], out[3], strict=True))
    assert close(out[3][0], reference(xb, senders, receivers, w, c)[0], jnp.float32)


@pytest.mark.parametrize("broken", ["unsorted receivers", "a sender out of range"])
def test_bad_indices_are_an_error_not_a_crash(broken):
    senders, receivers, _ = graph()
    if broken == "unsorted receivers":
        receivers = receivers[::-1]
    else:
        senders = senders.at[7].set(N + 5)
    m, x = points("sphere", 4, N, 1, jnp.float32)
    w = jnp.ones(senders.shape, jnp.float32)
    reference = functools.partial(_pull, m, False)
    with pytest.raises(Exception, match="receivers must be sorted and every index within the states"):
        fused.pull("sphere", False, reference, x, senders, receivers, w, jnp.float32(np.inf))[0].block_until_ready()


def _build_json(folder, **fields):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    doc = {"build": "portable", "variants": ["x86-64"], "source_sha256": "0" * 64, **fields}
    (folder / "build.json").write_text(json.dumps(doc))
    return folder


def test_a_build_of_another_pull_cc_is_not_used(tmp_path, monkeypatch):
    """After a git pull that changed pull.cc, the installed library is not what the source says:
    the engine falls back, says why in one line, and make (or pip install .) rebuilds it."""
    stale = _build_json(tmp_path / "_lib")
    monkeypatch.setattr(fused, "_folders", lambda: [stale])
    ok, why = fused._load.__wrapped__()
    assert not ok and "built from another pull.cc" in why and "pure-JAX" in why and "\n" not in why
    assert fused.describe().startswith("none (the fused kernel was built from another pull.cc")


def test_a_build_that_matches_is_taken_over_a_stale_one(tmp_path, monkeypatch):
    import hashlib

    want = hashlib.sha256(fused.SOURCE.read_bytes()).hexdigest()
    stale = _build_json(tmp_path / "stale")
    good = _build_json(tmp_path / "good", source_sha256=want, build="native", compiler="GNU 1.0")
    monkeypatch.setattr(fused, "_folders", lambda: [stale, good])
    build, why = fused.find_build()
    assert build.folder == good and build.kind == "native" and why == ""
    assert fused.describe() == "native (GNU 1.0)"


def test_an_install_without_a_compiler_says_so(tmp_path, monkeypatch):
    import hashlib

    want = hashlib.sha256(fused.SOURCE.read_bytes()).hexdigest()
    none = _build_json(tmp_path / "_lib", build="none", variants=[], source_sha256=want)
    monkeypatch.setattr(fused, "_folders", lambda: [none])
    ok, why = fused._load.__wrapped__()
    assert not ok and "no C++ compiler when hivemind was installed" in why and "\n" not in why


def test_the_portable_build_picks_the_level_the_cpu_lists():
    """HivemindCpuLevel (libgcc's CPU checks) against the kernel's own flags in /proc/cpuinfo."""
    import platform

    if platform.machine() != "x86_64" or not Path("/proc/cpuinfo").is_file():
        pytest.skip("x86-64 Linux only: the portable levels are x86-64's")
    build, _ = fused.find_build()
    if build is None or build.kind != "portable":
        pytest.skip("this checkout's kernel is a native build")
    flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split())
    v3 = {"avx2", "fma", "bmi1", "bmi2"} <= flags
    v4 = v3 and {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
    expected = "x86-64-v4" if v4 else "x86-64-v3" if v3 else "x86-64"
    assert fused._library(build).name == f"libhivemind_pull_{expected}.so"
    assert fused.describe() == f"portable, {expected} chosen for this CPU"


VARIANT_CHECK = """
import sys
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from hivemind.engine import fused
from hivemind.engine.energy import _pull
from hivemind.engine.manifolds import get_manifold
fused._library = lambda build: Path(sys.argv[1])
m = get_manifold("sphere", 5)
rng = np.random.default_rng(0)
x = m.random_point(jax.random.key(1), (300,), dtype=jnp.float64)
senders = jnp.asarray(rng.integers(0, 300, 2000), jnp.int32)
receivers = jnp.sort(jnp.asarray(rng.integers(0, 300, 2000), jnp.int32))
w = jnp.asarray(rng.uniform(0.5, 2.0, 2000))
ref = lambda s, a, b, w, c: _pull(m, True, s, a, b, w, c)
got = fused.pull("sphere", True, ref, x, senders, receivers, w, jnp.float64(1.0))
want = ref(x, senders, receivers, w, jnp.float64(1.0))
err = max(float(jnp.max(jnp.abs(g - r))) for g, r in zip(got, want))
print(fused.status()[1], err)
"""


def test_every_portable_variant_this_cpu_runs_agrees_with_the_pure_jax_kernel():
    """The baseline and v3 (and v4 where the CPU has AVX-512) libraries, each in its own process."""
    import subprocess
    import sys

    build, _ = fused.find_build()
    if build is None or build.kind != "portable" or "x86-64" not in build.variants:
        pytest.skip("no portable x86-64 build here")
    best = fused._library(build).name
    order = ["libhivemind_pull_x86-64.so", "libhivemind_pull_x86-64-v3.so", "libhivemind_pull_x86-64-v4.so"]
    for name in order[: order.index(best) + 1]:
        out = subprocess.run(
            [sys.executable, "-c", VARIANT_CHECK, str(build.folder / name)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        used, err = out.stdout.split()
        assert used == "fused" and float(err) < 1e-11, (name, out.stdout)


def test_auto_takes_the_fused_kernel_where_it_was_built():
    from hivemind.runner.manifest import manifest
    from hivemind.runner.simulate import kernel_choice, simulate

    assert kernel_choice(scenario()) == (True, "kernel: fused")  # run.kernel defaults to "auto"
    assert kernel_choice(scenario(run={"kernel": "jax"})) == (False, "kernel: jax")
    # manifest.json says which kernel computed the run
    for asked, used in (("auto", "fused"), ("jax", "jax")):
        s = scenario(run={"kernel": asked}, dynamics={"steps": 3})
        assert manifest(s, simulate(s))["kernel"] == used


@pytest.mark.parametrize("kind, dim", [("sphere", 4), ("hyperbolic", 3), ("euclidean", 5)])
def test_gradients_through_the_fused_pull_equal_the_pure_jax_ones(kind, dim):
    senders, receivers, rng = graph(1)
    m, x = points(kind, dim, N, 3, jnp.float64)
    w = jnp.asarray(rng.uniform(0.2, 2.0, E))
    c = jnp.asarray(1.2)
    ref, fz = both(m, kind, True, senders, receivers)
    loss = lambda f: lambda s, w: jnp.sum(f(s, w, c)[0] ** 2) + jnp.sum(f(s, w, c)[1])  # noqa: E731
    ga = jax.grad(loss(ref), argnums=(0, 1))(x, w)
    gb = jax.grad(loss(fz), argnums=(0, 1))(x, w)
    assert all(close(a, b, jnp.float64) for a, b in zip(ga, gb, strict=True))


@pytest.mark.parametrize(
    "sections",
    [
        {
            "graph": {"kind": "barabasi_albert_graph", "n": 40, "params": {"m": 2}},
            "run": {"seeds": [0, 1, 2]},
            "agents": {"stubbornness": 0.2},
            "dynamics": {"confidence": 1.0},
        },
        {
            "manifold": {"kind": "hyperbolic", "dim": 2},
            "graph": {"kind": "edges", "n": 5, "edges": [[1, 0], [2, 1], [3, 2], [4, 3]], "directed": True},
            "anchor": None,
            "anchors": [{"node": 0, "state": "random"}, {"node": 4, "state": "random", "seed": 1}],
            "run": {"precision": "float64"},
        },
    ],
    ids=["seeds-stubborn-bounded", "hyperbolic-directed-two-anchors-f64"],
)
def test_a_run_with_the_fused_kernel_ends_where_the_pure_jax_run_ends(sections):
    from hivemind.runner.simulate import kernel_choice, simulate

    runs = {}
    for kernel in ("fused", "jax"):
        s = scenario(**{**sections, "run": {**sections.get("run", {}), "kernel": kernel}})
        assert kernel_choice(s)[0] == (kernel == "fused")
        runs[kernel] = simulate(s)
    a, b = runs["fused"].state.values, runs["jax"].state.values
    tol = 1e-9 if a.dtype == np.float64 else 2e-5
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


def test_without_a_kernel_runs_fall_back_in_one_line(monkeypatch):
    from hivemind.runner.simulate import kernel_choice, simulate

    monkeypatch.setattr(fused, "_folders", lambda: [])
    monkeypatch.setattr(fused, "_load", functools.cache(fused._load.__wrapped__))
    s = scenario(run={"kernel": "fused"}, dynamics={"steps": 5})
    used, why = kernel_choice(s)
    assert not used and why.startswith("kernel: jax (the fused kernel is not built") and "\n" not in why
    assert simulate(s).state.shape[1] == 2  # the record steps 0 and 5
    # The command line says so for "auto" too, where the kernel is missing (not where it was not wanted).
    from hivemind.cli.common import kernel_note

    assert kernel_note(scenario(dynamics={"steps": 5})) == why
    assert kernel_note(scenario(run={"kernel": "jax"}, dynamics={"steps": 5})) is None


def test_cmake_without_a_compiler_installs_a_kernel_less_build(tmp_path):
    """The package build's CMakeLists.txt with no C++ compiler: configured and installed anyway,
    with a build.json that says so (the engine then names the reason)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    beside = Path(sys.executable).parent / "cmake"  # the dev extra's, where the venv is not on PATH
    cmake = str(beside) if beside.is_file() else shutil.which("cmake")
    root = fused.HERE.parents[2]
    if cmake is None or not (root / "CMakeLists.txt").is_file():
        pytest.skip("needs cmake and the repository's CMakeLists.txt (an installed wheel has neither)")
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler")}
    said = []
    configure = ["-S", str(root), "-B", str(tmp_path / "b")]
    for args in (configure, ["--install", str(tmp_path / "b"), "--prefix", str(tmp_path / "p")]):
        out = subprocess.run([cmake, *args], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        said.append(out.stderr)
    assert "no C++ compiler found" in said[0]
    doc = json.loads((tmp_path / "p" / "hivemind/engine/fused/_lib/build.json").read_text())
    assert doc["build"] == "none" and doc["variants"] == []
    assert doc["source_sha256"] == fused._source_sha256()
    assert not list((tmp_path / "p").rglob("*.so"))


def test_a_run_resumed_across_kernels_ends_where_one_kernel_ends(tmp_path):
    """Interrupted with the pure-JAX kernel, resumed with the fused one (the fingerprint leaves
    run.kernel out): within float32 rounding of the run with one kernel throughout."""
    from hivemind.runner.simulate import SimulationInterrupted, simulate

    sections = {"graph": {"kind": "barabasi_albert_graph", "n": 30, "params": {"m": 2}}, "dynamics": {"steps": 200}}

    def halfway(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted):
        simulate(scenario(**sections, run={"kernel": "jax"}), progress=halfway, checkpoint_dir=tmp_path / "c")
    resumed = simulate(scenario(**sections, run={"kernel": "fused"}), checkpoint_dir=tmp_path / "c", resume=True)
    whole = simulate(scenario(**sections, run={"kernel": "jax"}))
    assert resumed.state.shape == whole.state.shape
    assert np.max(np.abs(resumed.state.values - whole.state.values)) < 2e-5


@pytest.mark.parametrize(
    "kind, dim, dtype",
    [("sphere", 16, jnp.float32), ("hyperbolic", 2, jnp.float64), ("euclidean", 5, jnp.float32), ("sphere", 5, jnp.float64)],
)
def test_the_fused_distances_equal_the_manifolds_dist_and_batch_under_vmap(kind, dim, dtype):
    senders, receivers, _ = graph(3)
    m, x = points(kind, dim, N, 7, dtype)
    _, y = points(kind, dim, N, 8, dtype)
    ref = m.dist(x[receivers], x[senders])
    assert close(ref, fused.distances(kind, x, receivers, senders), dtype)
    runs = jnp.stack([x, y])  # vmapped over runs: one call with the runs as the kernel's batch axis
    got = jax.vmap(lambda s: fused.distances(kind, s, receivers, senders))(runs)
    assert got.shape == (2, E) and close(jax.vmap(lambda s: m.dist(s[receivers], s[senders]))(runs), got, dtype)
    with pytest.raises(Exception, match="every index must be within the states"):
        fused.distances(kind, x, receivers.at[3].set(N), senders).block_until_ready()


def test_the_records_with_the_fused_distances_equal_the_pure_jax_records():
    """What a run and a sweep record (loss, clusters, dispersion, ...) with the fused kernel's
    distances, against the same records in pure JAX: equal to float32 rounding, clusters exactly."""
    from hivemind.engine.kernel import _observe, observe_summary
    from hivemind.runner.simulate import engine_inputs, initial_configuration

    s = scenario(graph={"kind": "barabasi_albert_graph", "n": 120, "params": {"m": 2}}, run={"seeds": [0, 1, 2]})
    config, hyper, topology = engine_inputs(s, jnp.float32)
    states = jnp.stack([initial_configuration(s, k, jnp.float32) for k in (0, 1, 2)])
    tol = jnp.float32(0.3)
    for observe in (_observe, observe_summary):
        plain, fast = (observe(config.manifold, states, topology, tol, fused=f) for f in (False, True))
        assert plain.keys() == fast.keys()
        for k in plain:
            if k in ("clusters", "nearest_anchor"):
                assert bool(jnp.array_equal(plain[k], fast[k])), k
            else:
                assert close(plain[k], fast[k], jnp.float32), k
    assert int(jnp.max(plain["clusters"])) > 1  # the tolerance splits the agents: the clusters are really compared
