# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The CPU build of torch must be installed before anything that depends on torch,
# otherwise pip resolves a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the dashboard's browser test (apt-get)..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || { \
	    echo "Could not install chromium: apt-get needs root on Debian. Run 'apt-get install chromium', then 'make install' again."; \
	    exit 1; }; \
	fi
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/clinsynth demo --output demo_output

test: install
	@set +e; \
	if scripts/postgres.sh status >/dev/null 2>&1; then ours=0; else ours=1; fi; \
	url="$$(scripts/postgres.sh start)"; rc=$$?; \
	if [ $$rc -eq 3 ]; then \
	  echo "PostgreSQL is not installed: the PostgreSQL tests will be skipped."; url=""; ours=0; \
	elif [ $$rc -ne 0 ]; then \
	  echo "Could not start PostgreSQL (log: .pgdata/server.log)."; exit $$rc; \
	fi; \
	export CLINSYNTH_TEST_POSTGRES_URL="$${CLINSYNTH_TEST_POSTGRES_URL:-$$url}"; \
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit code 5)."; status=0; fi; \
	if [ $$ours -eq 1 ]; then scripts/postgres.sh stop; fi; \
	exit $$status

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	$(PY) benchmarks/bench_foundation.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
