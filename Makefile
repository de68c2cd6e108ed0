# The two quick-start commands (`make demo`, `make test`) set up their own virtual
# environment; everything else here is a convenience for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS_ALL := postgres,spark,airflow,aws,dev

.PHONY: demo test lint typecheck unit bench mwaa-bundle clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(EXTRAS_ALL)]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/fdp demo

test: lint typecheck unit

lint: $(VENV)/.all
	$(BIN)/ruff check src tests bench dags
	$(BIN)/ruff format --check src tests bench dags

typecheck: $(VENV)/.all
	$(BIN)/mypy

unit: $(VENV)/.all
	TZ=UTC $(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.all
	$(BIN)/python -m bench $(BENCH_ARGS)

mwaa-bundle: $(VENV)/.all
	$(BIN)/fdp bundle --output dist/mwaa

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .coverage
