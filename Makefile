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

# The narrower speedrun network (cifar-fast-93: half the FLOPs per image of cifar-fast) cut to 2 epochs of
# 40,000 images, then its test accuracy, with flip TTA; README's first lines give its time and accuracy.
# Threads: the cores free when it starts, counted again every 20 s (--threads 0), so that another busy
# process leaves it one thread instead of two that wait for each other.
# The data: $$CNNARCH_DATA, then ../shared/data/cifar10-jpeg (any shared/data above this folder), the cache,
# a download: the rule every command follows.
train-demo: venv
	$(BIN)/cnnarch train \
		--recipe cifar-fast-93 --epochs 2 --limit-train 40000 --warmup-epochs 0.46 --tta flip \
		--target-accuracy 70 --output runs/demo --overwrite

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two test processes: most slow tests (exports, compiles, notebooks) are single-threaded Python
test: lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
