# Developer entry points. `make run` and `make test` work on a fresh clone: they find a Python >= 3.12,
# create .venv and install the pinned requirements once (a stamp file makes re-runs instant).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# Override the interpreter used to create .venv: make run BASE_PYTHON=/path/to/python3.13
BASE_PYTHON ?=
# Extra arguments for pytest: make test PYTEST_ARGS="-k spend -x"
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` (0: no xdist, one process)
PYTEST_WORKERS ?= 2
# The tests `make test` selects (pytest -m); .ci/run's PostgreSQL pass also leaves out `own_database`
PYTEST_MARKERS ?= not browser
CHROMIUM := /usr/bin/chromium

# Prints the path of the first Python >= 3.12 found: on PATH, then in pyenv's versions (pyenv may not be on PATH).
define FIND_PYTHON
is_ok() { "$$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }; \
if [ -n "$(BASE_PYTHON)" ]; then \
  if is_ok "$(BASE_PYTHON)"; then echo "$(BASE_PYTHON)"; exit 0; fi; \
  echo "BASE_PYTHON=$(BASE_PYTHON) is not a Python >= 3.12" >&2; exit 1; \
fi; \
for candidate in python3.13 python3.12 python3; do \
  path="$$(command -v "$$candidate" 2>/dev/null || true)"; \
  if [ -n "$$path" ] && is_ok "$$path"; then echo "$$path"; exit 0; fi; \
done; \
roots="$${PYENV_ROOT:-} $$HOME/.pyenv"; \
if command -v pyenv >/dev/null 2>&1; then roots="$$(pyenv root 2>/dev/null || true) $$roots"; fi; \
for root in $$roots; do \
  for path in "$$root"/versions/3.13*/bin/python "$$root"/versions/3.12*/bin/python; do \
    if [ -x "$$path" ] && is_ok "$$path"; then echo "$$path"; exit 0; fi; \
  done; \
done; \
echo "No Python >= 3.12 found (tried python3.13, python3.12, python3 and pyenv's versions)." >&2; \
echo "Install Python 3.12 or 3.13, or name one: make $(MAKECMDGOALS) BASE_PYTHON=/path/to/python3.13" >&2; \
exit 1
endef

.PHONY: help
help:
	@echo "make run           set up .venv, migrate, create the admin user, serve on http://127.0.0.1:8000 with a worker"
	@echo "make test          the test suite without the browser tests (parallel)"
	@echo "make test-browser  the browser tests (needs Debian's chromium at $(CHROMIUM))"
	@echo "make lint          ruff, Django's system checks, missing migrations"
	@echo "make lock          recompile requirements*.txt (pinned, hashed) from requirements*.in (UPGRADE=1 to upgrade)"
	@echo "make bench         the benchmarks under bench/ (QUICK=1: only the six that need no PostgreSQL)"
	@echo "make clean         remove .venv and caches (keeps var/: the local database and dev secrets)"
	@echo "make distclean     clean, and remove var/ too"

$(VENV_PYTHON):
	@python="$$( $(FIND_PYTHON) )"; \
	echo "Creating $(VENV) with $$python ($$("$$python" --version 2>&1))"; \
	"$$python" -m venv $(VENV)

$(STAMP): requirements.txt requirements-test.txt | $(VENV_PYTHON)
	@if ! $(VENV_PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then \
	  echo "$(VENV) does not hold a Python >= 3.12; recreating it"; rm -rf $(VENV); $(MAKE) --no-print-directory $(VENV_PYTHON); \
	fi
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-test.txt
	@touch $@

.PHONY: venv
venv: $(STAMP)

# Recompile the locked sets from the top-level inputs: requirements.in -> requirements.txt (runtime, what the
# Dockerfile installs), requirements-test.in -> requirements-test.txt (runtime + tools, what `make test`
# installs). Pass UPGRADE=1 to move every package to the newest version the inputs allow.
PIP_COMPILE = $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
	--no-emit-index-url --no-emit-find-links --annotation-style=line $(if $(UPGRADE),--upgrade)
.PHONY: lock
lock: $(STAMP)
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-test.txt requirements-test.in

.PHONY: run
run: $(STAMP)
	DEBUG=1 PYTHON=$(abspath $(VENV_PYTHON)) bin/entrypoint run-local

.PHONY: test
test: $(STAMP)
	$(VENV)/bin/pytest -m "$(PYTEST_MARKERS)" -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

.PHONY: test-browser
test-browser: $(STAMP)
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "Chromium not installed at $(CHROMIUM); run: apt-get install -y chromium" >&2; exit 1; \
	fi
	$(VENV)/bin/pytest -m browser -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=tests.settings $(VENV_PYTHON) manage.py check
	DJANGO_SETTINGS_MODULE=tests.settings $(VENV_PYTHON) manage.py makemigrations --check --dry-run

.PHONY: bench
bench: $(STAMP)
	PYTHON=$(abspath $(VENV_PYTHON)) bench/run

.PHONY: clean
clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache test-results
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +

.PHONY: distclean
distclean: clean
	rm -rf var
