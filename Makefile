# The two quick-start commands (`make demo`, `make test`) set up their own virtual
# environment; everything else here is a convenience for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS_ALL := postgres,spark,airflow,aws,dev
# AWS Glue 5.0 runs Spark 3.5: the Spark tests also run against it, in a venv of their own.
SPARK35_VENV ?= .venv-spark35
SPARK35 := pyspark==3.5.9
# MWAA also runs Airflow 2.10: the DAG tests run against it in a venv of their own. Its
# constraints file is on GitHub (not reachable from CI's package mirror): these pins are the
# ones pip's resolver would get wrong without it (providers and Flask stack of 2.10.5).
AIRFLOW210_VENV ?= .venv-airflow210
AIRFLOW210 := apache-airflow==2.10.5 apache-airflow-providers-common-compat==1.3.0 \
	apache-airflow-providers-common-io==1.5.0 apache-airflow-providers-common-sql==1.21.0 \
	apache-airflow-providers-fab==1.5.2 apache-airflow-providers-ftp==3.12.0 \
	apache-airflow-providers-http==5.0.0 apache-airflow-providers-imap==3.8.0 \
	apache-airflow-providers-smtp==1.9.0 apache-airflow-providers-sqlite==4.0.0 \
	flask-appbuilder==4.5.2 sqlalchemy==1.4.54 connexion==2.14.2 flask==2.2.5 werkzeug==2.2.3 \
	marshmallow==3.23.1 pendulum==3.0.0 universal-pathlib==0.2.6 pytest==9.2.0 pytest-cov==7.1.0

.PHONY: demo test lint typecheck unit spark35 airflow210 bench mwaa-bundle clean

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

test: lint typecheck unit spark35 airflow210

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

$(AIRFLOW210_VENV)/.airflow210: pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW210_VENV)
	$(AIRFLOW210_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW210_VENV)/bin/pip install --quiet -e '.[postgres]' $(AIRFLOW210)
	touch $@

# The DAG tests (the rehearsal runs Airflow 3's services: Airflow 3 only). Flask 2.2 and
# SQLAlchemy 1.4, which Airflow 2.10 pins, warn about their own deprecations.
airflow210: $(AIRFLOW210_VENV)/.airflow210
	TZ=UTC SQLALCHEMY_SILENCE_UBER_WARNING=1 $(AIRFLOW210_VENV)/bin/pytest tests/orchestration \
		-m airflow --no-cov --deselect tests/orchestration/test_rehearsal.py \
		-W "ignore:'_app_ctx_stack' is deprecated:DeprecationWarning" \
		-W "ignore:'_request_ctx_stack' is deprecated:DeprecationWarning" \
		-W "ignore:The '__version__' attribute is deprecated:DeprecationWarning"

bench: $(VENV)/.all
	$(BIN)/python -m bench $(BENCH_ARGS)

mwaa-bundle: $(VENV)/.all
	$(BIN)/fdp bundle --output dist/mwaa

clean:
	rm -rf $(VENV) $(SPARK35_VENV) $(AIRFLOW210_VENV) data .pytest_cache .mypy_cache .ruff_cache .coverage
