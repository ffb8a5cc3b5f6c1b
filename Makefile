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

# Train ResNet-20 (He et al. 4.2) for a short schedule on 5,000 CIFAR-10 images and print its test accuracy.
# The data: --data, then $$CNNARCH_DATA (the shared JPEG copy when it is there), the cache, a download.
SHARED_CIFAR := $(wildcard ../shared/data/cifar10-jpeg)
train-demo: venv
	$(if $(SHARED_CIFAR),CNNARCH_DATA=$${CNNARCH_DATA:-$(SHARED_CIFAR)}) $(BIN)/cnnarch train \
		--recipe resnet-cifar --epochs 3 --limit-train 5000 --sched cosine --output runs/demo --overwrite

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two test processes: most slow tests (exports, compiles, notebooks) are single-threaded Python
test: lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
