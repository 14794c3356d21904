# Two commands do all set-up on a fresh Debian machine with Python 3.11+:
#   make demo   -> the offline end-to-end demo (outputs under data/ or $GENZOO_DATA_DIR)
#   make test   -> the test suite (what CI runs)
#   make test-fast -> everyday subset: the suite without tests marked slow (< 90 s)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PYOPENGL_PLATFORM ?= egl

.PHONY: demo test test-fast lint ui bench gpu-check system-deps venv deps test-deps clean

# Debian libraries for headless rendering (EGL + Mesa) and, for the tests, chromium (the browser
# test), slurm-wlm + munge (the SLURM executor's tests start a local cluster) and g++ (torch.compile
# on CPU emits C++: the regional compile test).
# Installed only when missing; needs root or sudo on a fresh machine.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; for p in libegl1 libgl1-mesa-dri libgles2 $(EXTRA_DEBS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, from its pin: an unpinned resolve pulls several GB of CUDA wheels.
$(VENV)/.deps: pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps
	$(PIP) install -q -e '.[test]'
	touch $@

deps: system-deps $(VENV)/.deps

test-deps: EXTRA_DEBS = chromium slurm-wlm munge g++
test-deps: system-deps $(VENV)/.test-deps

demo: deps
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/genzoo demo

# Two pytest-xdist workers, each with cores / workers torch threads (a worker that runs SLURM tests
# starts its own local cluster; see genzoo_assets_tests/conftest.py). Three workers on two cores
# were slower (more CPU time in contention). PYTEST_WORKERS=0 runs the suite in one process.
# --maxschedchunk 2: xdist's load scheduler first hands each worker a quarter of its share, in the
# suite's longest-first order, so ~115 slow tests queued behind the 1024² FLUX test while the other
# worker ran out (docs/experiments/test-time.md); two at a time, a worker takes what is next.
PYTEST_WORKERS ?= 2
PYTEST_SCHEDULE = --maxschedchunk 2
test: test-deps lint
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_SCHEDULE)

# ruff keeps the style (config in pyproject.toml); part of `make test`, so CI fails on a violation.
lint: test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Skips @pytest.mark.slow (the demo, the browser, subprocess robustness, tiny FLUX, training).
test-fast: test-deps
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) $(PYTEST_SCHEDULE)

ui: deps
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/genzoo ui

# Each script prints its own side-by-side ratio; FLUX runs on tiny random weights here
# (for GPU figures: .venv/bin/python bench/flux_gpu.py --base ... --canny ... --depth ...).
bench: EXTRA_DEBS = slurm-wlm munge
bench: deps
	$(PY) bench/body.py
	$(PY) bench/render.py
	$(PY) bench/catalog.py
	$(PY) bench/orchestration.py
	$(PY) bench/flux_gpu.py --tiny
	$(PY) bench/slurm.py

# Every paper backend at real size with random weights (no download) on the GPU present: a
# pass/fail table with throughput, ten minutes on an H100. Without a GPU: one line, exit 2.
gpu-check: deps
	mkdir -p $(DAGSTER_HOME)
	$(PY) bench/gpu_check.py

clean:
	rm -rf $(VENV) .dagster_home
