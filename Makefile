# femo: two commands set up everything on a fresh machine.
#   make demo   run the pipeline on the embedded default (local Spark, Delta, Derby metastore)
#   make test   run the test suite (make test-fast: the inner loop, no submit, no real data)
# Both create (or reuse, in seconds) the virtual environment and fetch the Delta jars first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
JARS_DIR ?= .jars
# The jar version follows the delta-spark Python package pinned in requirements/base.txt.
DELTA_VERSION := $(shell sed -n 's/^delta-spark==//p' requirements/base.txt)
REQUIREMENTS := requirements/base.txt requirements/dev.txt requirements/constraints.txt
VENV_STAMP := $(VENV)/.femo-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-16)
JARS_STAMP := $(JARS_DIR)/.delta-$(DELTA_VERSION)
HOROVOD_BUILD := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS=-j$(shell nproc)

export FEMO_CONF ?= $(CURDIR)/conf/local.yaml
export PYTHONPATH := $(CURDIR)
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help venv jars setup demo test test-fast lint typecheck check pack-env clean clean-home erd \
	sql-server sql-server-stop sql-server-status

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 19

venv: $(VENV_STAMP)  ## create or reuse .venv with the pinned stack (horovod built with Gloo)

$(VENV_STAMP): $(REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found" >&2; exit 2; }
	rm -f $(VENV)/.femo-*
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.3.1" "wheel==0.45.1"
	$(PY) -m pip install --progress-bar on -c requirements/constraints.txt \
		-r requirements/base.txt -r requirements/dev.txt
	@# horovod compiles against the TensorFlow installed above, so it comes second.
	$(HOROVOD_BUILD) $(PY) -m pip install --no-build-isolation -c requirements/constraints.txt \
		"horovod[spark]==0.28.1"
	$(PY) -c "import horovod.tensorflow.keras, petastorm, delta, cv2, pyspark; print('stack ok')"
	touch $@

jars: $(JARS_STAMP)  ## fetch the Delta jars (io.delta:delta-spark_2.12, delta-storage) once

$(JARS_STAMP):
	@command -v mvn >/dev/null || { echo "error: Maven (mvn) is needed to fetch the Delta jars once" >&2; exit 2; }
	rm -rf $(JARS_DIR).tmp && mkdir -p $(JARS_DIR).tmp
	for artifact in delta-spark_2.12 delta-storage; do \
		mvn --batch-mode --quiet dependency:copy -Dtransitive=false \
			-Dartifact=io.delta:$$artifact:$(DELTA_VERSION) -DoutputDirectory=$(JARS_DIR).tmp || exit 1; \
	done
	rm -rf $(JARS_DIR) && mv $(JARS_DIR).tmp $(JARS_DIR) && touch $@

setup: venv jars  ## both of the above

demo: setup  ## run the pipeline on FEMO_DATA_DIR (or a generated sample) and print how to query it
	./scripts/demo.sh

# Two pytest workers (pytest-xdist): a test's driver is mostly one thread planning, so a second
# worker uses the idle core. Each module runs whole on one worker (tests/conftest.py);
# PYTEST_WORKERS=0 runs everything in this process, in file order.
PYTEST_WORKERS ?= 2
PYTEST_DIST := -n $(PYTEST_WORKERS) --dist loadgroup

test: setup  ## run the test suite (everything CI runs; real data where FEMO_DATA_DIR has it)
	$(PY) -m pytest $(PYTEST_DIST) $(PYTEST_ARGS)

FAST_MARKERS := not submit and not cluster and not sqlserver and not ranks and not realdata
test-fast: setup  ## the inner loop: no spark-submit, cluster, SQL server, Horovod ranks or real data
	$(PY) -m pytest $(PYTEST_DIST) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

lint:  ## ruff over everything
	$(VENV)/bin/ruff check femo jobs tests benchmarks
	$(VENV)/bin/ruff format --check femo jobs tests benchmarks

typecheck:  ## mypy --strict over femo/
	$(VENV)/bin/mypy

check: lint typecheck test  ## lint, types and tests

erd:  ## regenerate docs/ERD.md (Mermaid) from the table specs in femo/platform/schemas.py
	$(PY) -m femo.analytics.erd --output docs/ERD.md

sql-server: setup  ## start Spark's Thrift server (JDBC/ODBC) on sql_server.host:port; SET="k=v ..."
	./scripts/sql-server.sh start $(foreach s,$(SET),--set $(s))

sql-server-stop:  ## stop it (with the embedded metastore, do so before running batch jobs)
	./scripts/sql-server.sh stop $(foreach s,$(SET),--set $(s))

sql-server-status:  ## is it running? (exit 3 when not)
	./scripts/sql-server.sh status $(foreach s,$(SET),--set $(s))

pack-env: venv  ## pack .venv for executors (build/femo-env.tar.gz, see conf/cluster.yaml)
	mkdir -p build
	$(VENV)/bin/venv-pack -p $(VENV) -o build/femo-env.tar.gz --force

clean:  ## remove build outputs (keeps .venv, .jars and your data)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

clean-home:  ## delete the local femo home (warehouse, metastore, landing, models, reports)
	@home=$$($(PY) -m femo.platform.settings --get home); \
	echo "removing $$home"; rm -rf "$$home"
