"""The command line answers without loading jax, and a second run reads its programs from the cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, env=env)


def loaded_after(call: str) -> set[str]:
    """Which of jax, xarray, matplotlib, networkx, numpy a fresh interpreter holds after ``call``."""
    heavy = ("jax", "xarray", "matplotlib", "networkx", "numpy")
    code = f"import sys\n{call}\nprint('loaded:', *(m for m in {heavy!r} if m in sys.modules))"
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines()[-1].split()[1:])


def test_import_hivemind_loads_no_library_until_a_name_is_used():
    assert loaded_after("import hivemind") == set()
    assert "jax" in loaded_after("import hivemind; hivemind.simulate")


def test_help_loads_no_numerical_library():
    code = "from hivemind.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == set()


def test_validate_reads_the_whole_scenario_without_jax():
    scenario = ROOT / "scenarios" / "live_quickstart.toml"  # [live] included: it is read by hivemind.live
    assert "jax" not in loaded_after(f"from hivemind.cli import main\nassert main(['validate', {str(scenario)!r}]) == 0")


def test_lazy_names_resolve_to_their_modules_and_unknown_ones_fail():
    import hivemind
    from hivemind.runner.simulate import simulate
    from hivemind.scenario import ScenarioError

    assert hivemind.simulate is simulate and hivemind.ScenarioError is ScenarioError
    assert set(hivemind.__all__) <= set(dir(hivemind))
    with pytest.raises(AttributeError, match="no attribute 'simulte'"):
        hivemind.simulte  # noqa: B018


@pytest.mark.slow
def test_a_second_run_reads_the_compiled_programs_from_the_cache(tmp_path):
    """The first process writes compiled programs into HIVEMIND_CACHE_DIR; the second compiles
    nothing the first compiled (jax.monitoring's cache-miss event counts what it compiles);
    with HIVEMIND_COMPILE_CACHE=0 nothing is written."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[manifold]\nkind = "sphere"\ndim = 2\n[graph]\nkind = "cycle"\nn = 12\n'
        "[dynamics]\nstep_size = 0.1\nsteps = 40\n[record]\nevery = 10\n"
    )
    code = (
        "import sys, jax\n"
        "misses = []\n"
        "jax.monitoring.register_event_listener(lambda e, **k: misses.append(e) if e.endswith('cache_misses') else None)\n"
        "from hivemind.cli import main\n"
        "code = main(['run', sys.argv[1], '--out', sys.argv[2], '--force', '--quiet'])\n"
        "print(code, len(misses))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "HIVEMIND_"))}
    cache = tmp_path / "cache"
    on, off = env | {"HIVEMIND_CACHE_DIR": str(cache)}, env | {"HIVEMIND_CACHE_DIR": str(cache), "HIVEMIND_COMPILE_CACHE": "0"}
    first = python(code, str(scenario), str(tmp_path / "a"), env=on)
    assert first.returncode == 0, first.stderr
    code_1, misses_1 = map(int, first.stdout.split()[-2:])
    entries = {p.name for p in cache.iterdir()}
    assert code_1 == 0 and misses_1 > 0 and entries
    second = python(code, str(scenario), str(tmp_path / "b"), env=on)
    code_2, misses_2 = map(int, second.stdout.split()[-2:])
    assert code_2 == 0 and misses_2 == 0, second.stderr
    assert {p.name for p in cache.iterdir()} == entries
    import xarray as xr

    with xr.open_dataset(tmp_path / "a" / "run.nc") as a, xr.open_dataset(tmp_path / "b" / "run.nc") as b:
        assert (a.state.values == b.state.values).all()  # a program read back computes the same bits
    other = tmp_path / "other-cache"
    third = python(code, str(scenario), str(tmp_path / "c"), env=off | {"HIVEMIND_CACHE_DIR": str(other)})
    assert third.returncode == 0 and not other.exists()


def test_the_program_leaves_quickly_but_runs_exit_handlers_and_flushes():
    """``leave`` skips the interpreter's teardown once jax is loaded: the exit code, the
    buffered output and the registered exit handlers must all still come out."""
    code = (
        "import atexit, sys, jax\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "from hivemind.cli import leave\n"
        "print('buffered', end=' ')\n"
        "leave(int(sys.argv[1]))"
    )
    for status in (0, 3):
        proc = python(code, str(status))
        assert proc.returncode == status and proc.stdout == "buffered handler ran\n", proc.stderr


def test_a_thread_still_working_keeps_the_plain_exit_that_waits_for_it():
    code = (
        "import threading, time, jax\n"
        "from hivemind.cli import leave\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "leave(4)"
    )
    proc = python(code)
    assert proc.returncode == 4 and proc.stdout == "thread finished\n", proc.stderr


def test_the_installed_program_exits_with_the_command_status(tmp_path):
    program = Path(sys.executable).with_name("hivemind")
    bad = tmp_path / "bad.toml"
    bad.write_text("[graph]\nkind = 'cycle'\nn = 0\n")
    proc = subprocess.run([str(program), "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[manifold]\nkind = "sphere"\ndim = 2\n[graph]\nkind = "cycle"\nn = 6\n[dynamics]\nstep_size = 0.1\nsteps = 20\n'
    )
    argv = [str(program), "run", str(scenario), "--out", str(tmp_path / "r"), "--quiet"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"results: {tmp_path / 'r' / 'run.nc'}, {tmp_path / 'r' / 'manifest.json'}" in proc.stdout.splitlines()
    assert proc.stdout.startswith("verdict: ")
    assert (tmp_path / "r" / "manifest.json").is_file()


def test_the_compilation_cache_keeps_to_its_bound_and_a_bad_bound_is_one_line(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[manifold]\nkind = "sphere"\ndim = 2\n[graph]\nkind = "cycle"\nn = 12\n[dynamics]\nstep_size = 0.1\nsteps = 40\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "HIVEMIND_"))}
    cache = tmp_path / "cache"
    bound = 0.05  # MB: a few of the run's programs, not all of them
    run = "import sys\nfrom hivemind.cli import main\nsys.exit(main(['run', sys.argv[1], '--out', sys.argv[2], '--quiet']))"
    proc = python(run, str(scenario), str(tmp_path / "a"), env=env | {"HIVEMIND_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    unbounded = sum(p.stat().st_size for p in cache.glob("*-cache"))
    assert unbounded > bound * 2**20  # the run compiles more than the bound holds
    small = tmp_path / "small"
    proc = python(
        run, str(scenario), str(tmp_path / "b"), env=env | {"HIVEMIND_CACHE_DIR": str(small), "HIVEMIND_CACHE_MAX_MB": str(bound)}
    )
    assert proc.returncode == 0, proc.stderr
    kept = sum(p.stat().st_size for p in small.glob("*-cache"))
    assert 0 < kept <= bound * 2**20
    proc = python(run, str(scenario), str(tmp_path / "c"), env=env | {"HIVEMIND_CACHE_MAX_MB": "-3"})
    assert (
        proc.returncode == 2 and proc.stderr.strip() == "HIVEMIND_CACHE_MAX_MB must be a positive number of megabytes, got '-3'"
    )


def test_a_cache_written_without_a_bound_keeps_working_with_one(tmp_path):
    """Entries written unbounded (an earlier hivemind) have no access-time file, and JAX's
    eviction reads one per entry on every write: they are dated once, so new programs are kept."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[manifold]\nkind = "sphere"\ndim = 2\n[graph]\nkind = "cycle"\nn = 12\n[dynamics]\nstep_size = 0.1\nsteps = 40\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "HIVEMIND_"))}
    cache = tmp_path / "cache"
    run = "import sys\nfrom hivemind.cli import main\nsys.exit(main(['run', sys.argv[1], '--out', sys.argv[2], '--quiet']))"
    unbounded = env | {"HIVEMIND_CACHE_DIR": str(cache), "JAX_COMPILATION_CACHE_MAX_SIZE": "-1"}
    proc = python(run, str(scenario), str(tmp_path / "a"), env=unbounded)
    assert proc.returncode == 0, proc.stderr
    old = {p.name for p in cache.glob("*-cache")}
    assert old and not list(cache.glob("*-atime"))
    scenario.write_text(scenario.read_text().replace("n = 12", "n = 13"))  # new shapes: new programs to write
    proc = python(run, str(scenario), str(tmp_path / "b"), env=env | {"HIVEMIND_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert "Error writing persistent compilation cache entry" not in proc.stderr
    entries = {p.name for p in cache.glob("*-cache")}
    assert entries > old  # the second run's programs were written beside the first's
    assert {p.name.removesuffix("-atime") for p in cache.glob("*-atime")} == {n.removesuffix("-cache") for n in entries}
