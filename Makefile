# Set-up and everyday commands. Each target creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,coco,test]"
	touch $(STAMP)

# The main job: synthetic VOC-layout data, SSD7 training, VOC mAP, saved model, drawings.
demo: $(STAMP)
	$(BIN)/ssd-keras demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_models.py --repeats 5
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo_output
