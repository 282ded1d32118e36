"""The trial back-ends' names: the values of `--backend`, the blocks of a benchmark YAML, and
the groups the layers above choose by. One place, so a back-end is never misspelled or
forgotten in one of the checks. Pure: no AWS or Docker."""

from __future__ import annotations

LOCAL = "local"  # trials as local processes
DOCKER = "docker"  # trials as local trainer containers (CreateTrainingJob requests)
SAGEMAKER = "sagemaker"  # trials as SageMaker training jobs
SIMULATED = "simulated"  # trials read from learning curves, in simulated time

BACKENDS = (LOCAL, DOCKER, SAGEMAKER)  # where trials really run: a benchmark YAML's blocks
SPEC_BACKENDS = (*BACKENDS, SIMULATED)  # what --backend accepts
CONTAINER_BACKENDS = (DOCKER, SAGEMAKER)  # trials are training jobs in the trainer image
BILLED_BACKENDS = (SAGEMAKER,)  # where the service's own billing is read
