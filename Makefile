# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo train-demo test lint venv clean

$(BIN)/cnnarch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,notebooks,export]'
	touch $@

venv: $(BIN)/cnnarch

# The main job: the zoo, the lecture's first network (its paper, the input sizes it accepts, its parameter
# count and how it differs from torchvision's), then a short training run of ResNet-20 on CIFAR-10.
demo: venv
	$(BIN)/cnnarch list
	@echo
	$(BIN)/cnnarch info alexnet
	@echo
	$(MAKE) --no-print-directory train-demo
	@echo
	@echo "cnnarch is installed in $(VENV): run 'source $(BIN)/activate' to put it on the PATH, then"
	@echo "'cnnarch eval runs/demo/best.pt' or 'cnnarch --help'"

# The speedrun recipe cut to 2 epochs of 36,000 images (under 3 minutes of training on 2 CPU cores: 75 % test
# top-1 on the JPEG copy, 2026-11-29), then its test accuracy, with flip TTA.
# The data: $$CNNARCH_DATA, then ../shared/data/cifar10-jpeg (any shared/data above this folder), the cache,
# a download: the rule every command follows.
train-demo: venv
	$(BIN)/cnnarch train \
		--recipe cifar-fast --epochs 2 --limit-train 36000 --warmup-epochs 0.46 --tta flip \
		--target-accuracy 70 --output runs/demo --overwrite

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two test processes: most slow tests (exports, compiles, notebooks) are single-threaded Python
test: lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
