# `make demo` and `make test` work on a fresh machine: each creates .venv with pip if missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export MER_HOME ?= $(CURDIR)/.mer-home

.PHONY: install demo test lint format clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt torch torchvision
	@# The plain OpenCV wheel shadows the contrib one (both ship cv2/): drop it from older venvs.
	-$(BIN)/pip uninstall -y -q opencv-python-headless opencv-python 2>/dev/null
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mer demo --runs-dir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-enable -p no:cacheprovider

clean:
	rm -rf $(VENV) .mer-home runs build *.egg-info
