# The two commands: `make run` and `make test` (README).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install clean bench manage

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: deploycheck needs Python 3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@bash scripts/run.sh

# A management command with `make run`'s environment: make manage ARGS="grant alice lead --create"
manage: $(STAMP)
	@bash scripts/run.sh manage $(ARGS)

test: $(STAMP)
	@bash scripts/test.sh $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache test-artifacts

# Every benchmark, then benchmarks/RESULTS.md; a missed target shows there (and as the exit status).
bench: $(STAMP)
	status=0; \
	$(PY) benchmarks/verifications.py || status=1; \
	$(PY) benchmarks/ticks.py || status=1; \
	$(PY) benchmarks/history.py || status=1; \
	$(PY) benchmarks/page.py || status=1; \
	$(PY) benchmarks/report.py; \
	exit $$status
