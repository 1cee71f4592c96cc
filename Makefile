# The course's entry points. `make site` and `make test` are the README's two commands.
# Both create .venv on first use and re-use it afterwards (re-installing only when
# requirements.txt or pyproject.toml change).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: site test bench system-deps clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

## Build the whole website into _build/html (executes every chapter; cached between builds).
site: $(STAMP)
	$(PY) scripts/execute_book.py
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo
	@echo "The site is built. Open: file://$(CURDIR)/_build/html/index.html"

## Browser tests need Chromium, sandboxed grading needs bubblewrap: install them with apt where we are root.
system-deps:
	@bash scripts/system-deps.sh

## Run the whole test suite (unit tests, book build, nbgrader end to end, browser).
test: $(STAMP) system-deps
	$(PY) -m pytest -n 2 --dist loadgroup

## Measure actgrad against PyTorch, the book build and autograding (optional).
bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf _build
