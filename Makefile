# Set-up and everyday commands. Each target creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

# PyTorch first, pinned to the CPU build (about 200 MB, from the machine's wheel cache where
# there is one); a plain `torch` requirement would fetch the CUDA build, several GB.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[cpu,jax,torch,coco,onnx,test,docs]"
	touch $(STAMP)

# The main job: synthetic VOC-layout data, SSD7 training, VOC mAP, saved model, drawings.
demo: $(STAMP)
	$(BIN)/ssd-keras demo --out demo_output

# Everything under TensorFlow, then the backend-sensitive tests under JAX and PyTorch.
# --maxschedchunk 1: each worker is handed one test at a time, in the order of
# tests/conftest.py (the slow ones first), so the two end together.
# JAX compiles the same small functions (weight initialisers, train steps) in many test
# processes: a compilation cache shared by them, new for every run, saves a third. XLA's
# CPU back end at optimisation level 0 compiles the tests' tiny programs faster than it
# would save running them (JAX-heavy tests: a quarter less time; TF's jit_compile too).
JAX_CACHE := $(VENV)/jax-cache
test: $(STAMP) lint
	rm -rf $(JAX_CACHE)
	export JAX_COMPILATION_CACHE_DIR=$(abspath $(JAX_CACHE)) JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
		JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 XLA_FLAGS="$$XLA_FLAGS --xla_backend_optimization_level=0"; \
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 -q --durations=15 tests && \
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 --maxschedchunk 1 -q --durations=15 -m backends tests && \
	KERAS_BACKEND=torch $(BIN)/python -m pytest -n 2 --maxschedchunk 1 -q --durations=15 -m backends tests

# ruff with the rules of pyproject.toml: no finding, and the code as its formatter writes it.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site, into site/: any warning is an error (--strict).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The CPU benchmarks; each writes its figures to benchmarks/results/ as JSON (the
# Performance page's tables are rendered from those files).
RESULTS := --results benchmarks/results
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py $(RESULTS)
	$(BIN)/python benchmarks/bench_data.py $(RESULTS)
	$(BIN)/python benchmarks/bench_eval.py $(RESULTS)
	$(BIN)/python benchmarks/bench_fit.py $(RESULTS)
	$(BIN)/python benchmarks/bench_demo.py $(RESULTS)
	$(BIN)/python benchmarks/bench_export.py $(RESULTS)
	for b in tensorflow jax torch; do \
		KERAS_BACKEND=$$b $(BIN)/python benchmarks/bench_models.py --repeats 5 $(RESULTS) && \
		KERAS_BACKEND=$$b $(BIN)/python benchmarks/bench_decoding.py $(RESULTS) && \
		KERAS_BACKEND=$$b $(BIN)/python benchmarks/bench_layer_overhead.py $(RESULTS) || exit 1; \
	done

clean:
	rm -rf $(VENV) *.egg-info build dist .pytest_cache .ruff_cache demo_output
