# stbench: two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TAG ?= demo-$(shell date +%Y%m%d-%H%M%S)
BENCH ?= mlp_digits
METHODS ?= ASHA RS
SEEDS ?= 2
BUDGET ?= 40

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: a real local HPO study (trials as local processes), then a table and a plot
run: $(VENV)/.installed
	$(BIN)/stbench run --benchmark $(BENCH) --method $(METHODS) --num_seeds $(SEEDS) \
		--max_wallclock_time $(BUDGET) --experiment_tag $(TAG)

## test: install the dev extras and run every test
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check stbench tests bench

## build: the trainer and orchestrator images on the local Docker engine (base image or its
## debootstrap stand-in, host-built wheelhouse, then docker build; fast when nothing changed)
BASE_IMAGE ?= python:3.11-slim
.PHONY: build
build:
	BASE_IMAGE=$(BASE_IMAGE) images/build.sh

## push: the trainer and orchestrator images (from `make build`) to ECR of the current AWS
## account and region, or to REGISTRY=HOST[:PORT][/path]; prints the URIs to pass as --image
## (REGION=... another ECR region, IMAGE_TAG=... a local tag other than <version>-<git sha>)
REGISTRY ?=
REGION ?=
IMAGE_TAG ?=
.PHONY: push
PUSH_ARGS = $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(REGION),--region $(REGION)) \
	$(if $(IMAGE_TAG),--tag $(IMAGE_TAG))
push: $(VENV)/.installed
	$(BIN)/stbench images push $(strip $(PUSH_ARGS))

## bench: rerun the performance benchmarks and update docs/performance.md
bench: $(VENV)/.installed
	$(BIN)/python bench/turnaround.py --repeats 3 --write

clean:
	rm -rf $(VENV) results
