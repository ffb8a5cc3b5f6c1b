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

# The zoo, then the lecture's first network: its paper, the input sizes it accepts, its parameter count
# (the paper's 60,965,224) and how it differs from torchvision's.
demo: venv
	$(BIN)/cnnarch list
	@echo
	$(BIN)/cnnarch info alexnet

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
