# stbench: two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TAG ?= demo-$(shell date +%Y%m%d-%H%M%S)
# make remote's defaults (make run has its own, below)
BENCH ?= mlp_digits
METHODS ?= ASHA RS
SEEDS ?= 2
BUDGET ?=
# make run's study: a comparison benchmark on which the methods finish apart, about three
# minutes on 2 cores; BENCH=, METHODS=, SEEDS= and BUDGET= (seconds) replace them
RUN_BENCH ?= hartmann6_curves
RUN_METHODS ?= MOBSTER RS
RUN_SEEDS ?= 3
RUN_BUDGET ?= 25

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,torch,tabular]'
	touch $@ $(VENV)/.installed

## run: a real local HPO study (trials as local processes), then a table and a plot: by
## default MOBSTER vs random search on hartmann6_curves, 3 seeds of 25 s (RUN_* above);
## BENCH=, METHODS=, SEEDS=, BUDGET= and TAG= choose another
run_or_default = $(if $(call given,$(1)),$($(1)),$(RUN_$(1)))
run: $(VENV)/.installed
	$(METHOD_HINT)$(BIN)/stbench run --benchmark $(call run_or_default,BENCH) \
		--method $(call run_or_default,METHODS) --num_seeds $(call run_or_default,SEEDS) \
		--max_wallclock_time $(call run_or_default,BUDGET) --experiment_tag $(TAG)

## test: install the dev extras and run every test
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check stbench tests bench

## build: the trainer and orchestrator images, for linux/amd64, on the local Docker engine.
## Needs Docker and bash, no Python: pip runs inside docker build, with the host's pip index
## and CA certificate when set (PIP_INDEX_URL, PIP_CERT, ...); seconds when nothing changed.
## GPU=1 also builds stbench-trainer-gpu (the trainer plus CUDA PyTorch, about 6 GB), the image
## of benchmarks with `image: gpu` such as resnet_cifar10. WHEELHOUSE=1: the offline fallback,
## a wheelhouse built on the host (also taken when the build cannot reach an index; 0: never).
## IMAGE_TAG=...: that tag only, instead of <version>-<git sha> and latest
BASE_IMAGE ?= python:3.11-slim
GPU ?= 0
WHEELHOUSE ?=
.PHONY: build
build:
	BASE_IMAGE=$(BASE_IMAGE) GPU=$(GPU) WHEELHOUSE=$(WHEELHOUSE) IMAGE_TAG=$(IMAGE_TAG) \
		images/build.sh

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

## remote: one SageMaker orchestrator job per (benchmark, method, seed); relaunching skips
## experiments that are running or done. Needs ROLE=<execution role ARN>,
## S3_ROOT=s3://bucket/prefix and IMAGE=<trainer ECR URI printed by make push>.
## Takes BENCH (a built-in name or a YAML path), METHODS, SEEDS and BUDGET=<seconds>,
## and N_WORKERS=, WARM_POOL=1, ARGS="--inputs dataset=s3://... --epochs 3" (any other
## `stbench launch` flags or benchmark arguments). STUDY=examples/tutorial.yaml launches a
## study file instead of BENCH/METHODS/SEEDS. It prints a cost estimate before the first job;
## ARGS=--dry_run prints the plan and the estimate and launches nothing.
STUDY ?=
ROLE ?=
S3_ROOT ?=
IMAGE ?=
N_WORKERS ?=
WARM_POOL ?=
ARGS ?=
given = $(filter command line environment,$(origin $(1)))
# without TAG=, the tag is the benchmark's name (its file's stem for a path, `_` and `.` as
# `-`), so that running the same command again is idempotent (a timestamped tag would launch
# everything again)
REMOTE_TAG = $(if $(call given,TAG),$(TAG),$(subst .,-,$(subst _,-,$(basename $(notdir $(BENCH))))))
LAUNCH_WHAT = $(if $(STUDY),$(STUDY),--benchmark $(BENCH) --method $(METHODS) --num_seeds $(SEEDS) \
	--experiment_tag $(REMOTE_TAG))
LAUNCH_ARGS = $(if $(ROLE),--role $(ROLE)) $(if $(S3_ROOT),--s3_root $(S3_ROOT)) \
	$(if $(IMAGE),--image $(IMAGE)) $(if $(REGION),--region $(REGION)) \
	$(if $(call given,BUDGET),--max_wallclock_time $(BUDGET)) \
	$(if $(N_WORKERS),--n_workers $(N_WORKERS)) $(if $(WARM_POOL),--warm_pool $(WARM_POOL)) $(ARGS)
# make run and make remote take METHODS: a METHOD= left from older commands would be ignored
METHOD_HINT = $(if $(call given,METHOD),$(error METHOD= would be ignored: pass \
	METHODS="$(METHOD)" (make run and make remote take METHODS)))
.PHONY: remote
remote: $(VENV)/.installed
	$(METHOD_HINT)$(BIN)/stbench launch $(strip $(LAUNCH_WHAT) $(LAUNCH_ARGS))

## bench: rerun the performance benchmarks and update docs/performance.md
bench: $(VENV)/.installed
	$(BIN)/python bench/turnaround.py --write

clean:
	rm -rf $(VENV) results
