# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv clean

$(BIN)/cnnarch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/cnnarch

demo: venv
	$(BIN)/cnnarch list
	$(BIN)/cnnarch info resnet50

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
