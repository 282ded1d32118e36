"""Trial backends: where trials run (local processes now; containers and SageMaker later)."""
