"""Where trials run: local processes (`process/`), curves in simulated time (`simulated/`), or
training jobs behind one job backend (`jobs/`) on the local Docker engine or SageMaker; `aws`
holds what every boto3 caller shares."""
