# The two quick-start commands (`make demo`, `make test`) set up their own virtual
# environment; everything else here is a convenience for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS_ALL := postgres,spark,airflow,aws,dev
# AWS Glue 5.0 runs Spark 3.5: the Spark tests also run against it, in a venv of their own.
SPARK35_VENV ?= .venv-spark35
SPARK35 := pyspark==3.5.9

.PHONY: demo test lint typecheck unit spark35 bench mwaa-bundle clean

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

test: lint typecheck unit spark35

lint: $(VENV)/.all
	$(BIN)/ruff check src tests bench dags
	$(BIN)/ruff format --check src tests bench dags

typecheck: $(VENV)/.all
	$(BIN)/mypy

unit: $(VENV)/.all
	TZ=UTC $(BIN)/pytest $(PYTEST_ARGS)

$(SPARK35_VENV)/.spark35: pyproject.toml
	$(PYTHON) -m venv $(SPARK35_VENV)
	$(SPARK35_VENV)/bin/pip install --quiet --upgrade pip
	$(SPARK35_VENV)/bin/pip install --quiet -e '.[dev]' '$(SPARK35)'
	touch $@

# PySpark 3.5 leaves its result sockets to the garbage collector (see its rdd.py). Its Spark
# Connect server jar is a Maven download (none here): the Connect tests run on Spark 4 only.
# Losing an executor is Spark's scheduler at work, not fdp's code: tested on Spark 4 only
# (it is the longest test, and CI stays under 30 minutes).
spark35: $(SPARK35_VENV)/.spark35
	TZ=UTC $(SPARK35_VENV)/bin/pytest tests/engines tests/quality -m "spark and not connect" --no-cov \
		--deselect tests/engines/test_cluster.py::test_losing_an_executor_mid_transform_costs_a_task_retry_only \
		-W "ignore:unclosed <socket.socket:ResourceWarning"

bench: $(VENV)/.all
	$(BIN)/python -m bench $(BENCH_ARGS)

mwaa-bundle: $(VENV)/.all
	$(BIN)/fdp bundle --output dist/mwaa

clean:
	rm -rf $(VENV) $(SPARK35_VENV) data .pytest_cache .mypy_cache .ruff_cache .coverage
