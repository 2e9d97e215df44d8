# The two set-up commands of the README: `make book` and `make test`.
# Each creates .venv and installs the pinned dependencies the first time; later runs reuse it
# (the stamp file is rebuilt only when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.asbbook-installed

.PHONY: install book book-smoke pdf test test-fast lint format strip bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 resolves to the CPU wheel on this machine; see README "Dependencies".
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

book: $(STAMP)  ## execute every chapter at full size, then build _build/html
	$(BIN)/asbbook build

book-smoke: $(STAMP)  ## the same with the smoke-sized parameters the tests use
	$(BIN)/asbbook build --smoke

pdf: book  ## the whole book as one PDF, _build/html/asbbook.pdf (single-page HTML printed by Chromium)
	$(BIN)/python -m asbbook.pdf

test: $(STAMP)  ## the whole test suite (unit, Monte-Carlo, chapters at smoke size, build, browser)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## everything except executing and building the book
	$(BIN)/python -m pytest --ignore tests/test_book.py --ignore tests/test_browser.py

lint: $(STAMP)
	$(BIN)/ruff check asbbook tests bench book
	$(BIN)/ruff format --check asbbook tests bench book

format: $(STAMP)
	$(BIN)/ruff format asbbook tests bench book
	$(BIN)/ruff check --fix asbbook tests bench book

strip: $(STAMP)  ## remove outputs from the committed notebooks
	$(BIN)/asbbook strip

bench: $(STAMP)  ## performance figures (recorded in bench/README.md)
	$(BIN)/python bench/bench_ensemble.py

clean:
	rm -rf _build .pytest_cache
