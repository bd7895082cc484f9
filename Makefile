# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The CPU build of torch must be installed before anything that depends on torch,
# otherwise pip resolves a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The extras the test suite exercises (README: what each extra adds). [umap] is left out: its
# test skips without it, and numba is a large install.
EXTRAS ?= dashboard,excel,sql,postgres,dask,federated,dev
PYTEST_ARGS ?=
# SDV and SDMetrics (the benchmarks' references) pin pandas<3: they live in their own venv so
# that the test venv has the pandas users get.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.PHONY: install demo test lint bench bench-install check-sdmetrics clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
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

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench,excel,dev]"
	touch $(BENCH_STAMP)

# The venv of the benchmarks that compare with SDV (benchmarks/bench_deep.py, bench_field.py):
#   make bench-install && .venv-bench/bin/python benchmarks/bench_field.py
bench-install: $(BENCH_STAMP)

# The fidelity scores' cross-check against SDMetrics (skipped in the test venv).
check-sdmetrics: bench-install
	$(BENCH_VENV)/bin/python -m pytest -p no:cacheprovider tests/evaluation/test_fidelity.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo_output .pytest_cache
