# Setup contract: only python3 (3.11) and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JAX_PLATFORMS ?= cpu

.PHONY: demo test install install-dev figures clean bench-speed bench-table bench-anchors bench-time bench-tasks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/warp-phys demo

figures: $(VENV)/.installed
	$(BIN)/python examples/make_figures.py

bench-table: $(VENV)/.installed
	$(BIN)/python -m benchmarks.reconstruction --preset cpu

# SINDy and per-trajectory ODE fits vs WARP / WARP-Phys (needs the bench extra: pysindy)
bench-anchors: $(VENV)/.installed
	$(BIN)/python -c "import pysindy" 2>/dev/null || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.anchors

bench-speed: $(VENV)/.installed
	$(BIN)/python -m benchmarks.speed

# pytest-xdist: one worker per core, at most 4 (each compiles its own fixtures); a test
# file stays on one worker, so its module fixtures compile once. TESTFLAGS= runs serially.
TESTFLAGS ?= -n auto --maxprocesses 4 --dist loadfile
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(TESTFLAGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# time to accuracy: equal budget and lr sweep per model, resumable (~2.8 h on 2 cores;
# TIME_SCALE=0.2 shrinks every budget: ~1 h)
TIME_SCALE ?= 1
bench-time: $(VENV)/.installed
	$(BIN)/python -m benchmarks.time_to_accuracy --scale $(TIME_SCALE)

# classification, digit completion, in-context regression: WARP vs GRU/LSTM/Transformer
# (needs the tasks extra: aeon, scikit-learn; 20 min on 2 cores, --tune about twice)
bench-tasks: $(VENV)/.installed
	$(BIN)/python -c "import aeon, sklearn" 2>/dev/null || $(BIN)/pip install --quiet -e '.[tasks]'
	$(BIN)/python -m benchmarks.tasks
