# Two commands a newcomer needs: `make demo` and `make test`. Each makes .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# test files run in this many processes, each file whole in one (0: one process, as plain pytest)
TEST_WORKERS ?= 2

.PHONY: demo test lint bench check-install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rag-otel demo $(DEMO_ARGS)

test: $(STAMP)
	bash tests/system/ensure-packages.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	@if [ -n "$$CI" ]; then bash .ci/check_install; fi  # CI also proves `pip install rag-otel` on Python 3.10-3.13

# `pip install rag-otel` resolves with the pip each supported Python ships; the oldest versions import clean
check-install:
	bash .ci/check_install

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
