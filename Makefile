# The README's two commands are `make demo` and `make test`; everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export METERWORKS_HOME ?= $(CURDIR)/data

.PHONY: setup demo test test-slow test-spark lint format bench clean dev app

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install Meterworks with its dev tools

demo: $(STAMP)  ## generate the demo and run the whole pipeline on it, then print the summary
	$(BIN)/meterworks demo

test: $(STAMP)  ## the default, fast test suite
	$(BIN)/pytest -q

test-slow: $(STAMP)  ## heavy end-to-end checks (run in CI too)
	$(BIN)/pytest -q -m slow

test-spark: $(STAMP)  ## dbt on Apache Spark: local[2], the Dagster build, a standalone cluster (Java 17)
	$(BIN)/python -c 'import pyspark, pyhive, thrift_sasl, dbt.adapters.spark' 2>/dev/null \
		|| $(BIN)/pip install --quiet -e '.[dev,spark]'
	$(BIN)/python -c 'from meterworks.engine.spark import _java_home as j; h = j(); print("JAVA_HOME", h); assert h, "no Java 17: set JAVA_HOME or put java on PATH"'
	$(BIN)/pytest -q -m spark

lint: $(STAMP)  ## ruff + sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	METERWORKS_WAREHOUSE=$(CURDIR)/.lint.duckdb $(BIN)/sqlfluff lint dbt/models dbt/tests dbt/macros

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## metering benchmark (10 M events by default; EVENTS=1000000 for a quick one)
	$(BIN)/python benchmarks/bench_metering.py --events $${EVENTS:-10000000}

dev: $(STAMP)  ## Dagster UI on $METERWORKS_HOME
	$(BIN)/meterworks dev

app: $(STAMP)  ## the Streamlit app on $METERWORKS_HOME (127.0.0.1:8501)
	$(BIN)/meterworks app

clean:
	rm -rf dbt/target dbt/logs logs .pytest_cache .ruff_cache
