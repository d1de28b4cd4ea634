# Two entry points for a fresh machine with only Python 3.10+ and make:
#   make demo   -> installs into .venv and runs the offline MNIST autoencoder -> classifier demo
#   make test   -> installs into .venv (with the test extra) and runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
# pytest-xdist worker processes: the suite is mostly single-threaded TensorFlow/Keras
# overhead, so two workers use both cores of a 2-core machine (`make test PYTEST_WORKERS=0`
# runs in one process).
PYTEST_WORKERS ?= 2
# --dist worksteal: an idle worker takes tests queued behind a long one (the slow tier is
# a handful of tests of 2-15 minutes). --durations: every CI log lists its slowest tests.
PYTEST := $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal --durations=25
# Model-level tests that must pass on every Keras backend, not only TensorFlow.
BACKEND_AGNOSTIC_TESTS := tests/layers tests/models tests/transfer tests/peft

.PHONY: demo test test-slow test-long lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/mnist_autoencoder_classifier.py $(ARGS)

test: $(BIN)/.installed
	$(PYTEST) -m "not slow" tests
	KERAS_BACKEND=jax $(PYTEST) -m "not slow and not tf_only" $(BACKEND_AGNOSTIC_TESTS)

test-slow: $(BIN)/.installed
	$(PYTEST) -m "slow and not long" tests

# The text recipe's full-budget check (14M tokens of IMDb pretraining, ~1 hour on 2 cores):
# run by hand before changing the text recipe or its pretraining loop, not by CI.
test-long: $(BIN)/.installed
	$(PYTEST) -m long tests

lint: $(BIN)/.installed
	$(BIN)/ruff format --check ptft_keras tests examples benchmarks
	$(BIN)/ruff check ptft_keras tests examples benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
