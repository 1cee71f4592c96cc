# The course's entry points. `make site` and `make test` are the README's two commands.
# Both create .venv on first use and re-use it afterwards (re-installing only when
# requirements.txt or pyproject.toml change).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: site catalogs test bench system-deps clean

$(STAMP): requirements.txt pyproject.toml
	@echo "Installing the pinned environment into $(VENV)/ (first time, or after requirements.txt or"
	@echo "pyproject.toml changed): about 1.8 GB, mostly PyTorch's CPU build; a few minutes."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements.txt
	@$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)
	@echo "Environment ready."

## Build the whole website into _build/html (executes the changed chapters two at a time, cached
## between builds, then renders; scripts/execute_book.py keeps kernel noise out of the log), then
## the Chinese site into _build/html/zh from the same notebooks and cache (scripts/i18n.py).
site: $(STAMP)
	@$(PY) scripts/execute_book.py --build
	@echo
	@echo "Building the Chinese site (same notebooks, translated by locales/zh_CN; every warning is an error)..."
	@$(PY) scripts/i18n.py config
	@$(PY) scripts/i18n.py build
	@echo
	@echo "The site is built: open file://$(CURDIR)/_build/html/index.html"
	@echo "(Chinese: file://$(CURDIR)/_build/html/zh/index.html)"
	@echo "(everything works from file:// except search snippets; for those serve it:"
	@echo " $(PY) -m http.server -d _build/html   and open http://localhost:8000)"

## Re-extract the book's English text and merge it into the translation catalogs
## locales/zh_CN/LC_MESSAGES/*.po (translations kept; changed paragraphs become fuzzy or untranslated).
catalogs: $(STAMP)
	@$(PY) scripts/i18n.py config
	@$(PY) scripts/i18n.py update

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
