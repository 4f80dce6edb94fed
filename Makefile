# smo-impact developer commands. `make setup && make demo` is all a fresh machine needs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Read the local data mirror when it exists and the caller did not choose another.
ifeq ($(origin SMO_IMPACT_DATA_DIR), undefined)
  ifneq ($(wildcard ../shared/data),)
    export SMO_IMPACT_DATA_DIR := $(abspath ../shared/data)
  endif
endif
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
UI_PORT ?= 5000

.PHONY: setup demo smoke test test-slow test-all bench bench-validity bench-finetune bench-scale bench-embedding-cache ui clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/smo-impact run experiments/quickstart.yaml

# CI smoke of the transformer path (tiny random-weight BERT on HS-Brexit, ~40 s): exit 3 when a
# gate fails, i.e. a model ranks at chance or predicts one class (see examples/github-actions-smoke.yml).
# One torch thread: the tiny model is too small to gain from more, and loses much on a busy CPU.
SMOKE_STORE ?= sqlite:///smoke/mlflow.db
smoke: setup
	mkdir -p smoke
	status=0; SMO_IMPACT_TORCH_THREADS=$${SMO_IMPACT_TORCH_THREADS:-1} $(BIN)/smo-impact run experiments/smoke_tiny.yaml \
	  --gate --force --tracking-uri $(SMOKE_STORE) $(SMOKE_ARGS) || status=$$?; \
	$(BIN)/smo-impact report smoke_tiny --out smoke/report --tracking-uri $(SMOKE_STORE) || true; \
	exit $$status

test: setup
	$(BIN)/pytest -m "not slow" -q

test-slow: setup
	$(BIN)/pytest -m slow -q

test-all: setup
	$(BIN)/pytest -q

# Issue 16's targets, each a ratio or share with its median and spread (~15 min on 2 busy cores):
# 1 end to end vs a plain script, 2 logging share of a run, 3 start-up, 4 bootstrap, 5 executors.
bench: setup
	@echo "== target 1: quickstart end to end vs a plain per-run script"; $(PY) benchmarks/bench_end_to_end.py --rounds 3
	@echo "== target 2: logging share of a run's wall time"; $(PY) benchmarks/bench_logging.py --rounds 3
	@echo "== target 3: start-up and store creation"; $(PY) benchmarks/bench_startup.py --repeat 5
	@echo "== target 4: bootstrap intervals"; $(PY) benchmarks/bench_bootstrap.py
	@echo "== target 5: local pool vs sequential, whole process"; $(PY) benchmarks/bench_executors.py --rounds 3
	@echo "== featurize once vs per run; load + validate 1M judgements"
	$(PY) benchmarks/bench_quickstart_sweep.py
	$(PY) benchmarks/bench_load_validate.py

# Do the analyses find what was planted? Root-cause analysis on planted faults (~20 min on 2 busy cores).
# Does the framework's own statistics hold? A/A false alarms per gate (~15 min per model, the MLP
# seed-only variant longer), the power planner's promise (~5 min), RCA on planted faults (~20 min).
bench-validity: setup
	$(PY) benchmarks/bench_aa.py
	$(PY) benchmarks/bench_power.py
	$(PY) benchmarks/bench_rca_planted.py

# Transformer benchmarks (minutes on 2 CPU cores; on a busy machine try SMO_IMPACT_TORCH_THREADS=1).
bench-finetune: setup
	$(PY) benchmarks/bench_finetune.py --train 2048 --dev 1000 --repeat 2

# 10M generated judgements: load + validate, majority vote, alpha, Dawid-Skene (~1.5 min, ~4 GB).
bench-scale: setup
	$(PY) benchmarks/bench_scale.py

bench-embedding-cache: setup
	$(PY) benchmarks/bench_embedding_cache.py

ui: setup
	@echo "MLflow UI on http://127.0.0.1:$(UI_PORT) (store: $(MLFLOW_TRACKING_URI))"
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port $(UI_PORT)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
