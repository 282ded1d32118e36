"""The trainer image's entrypoint: runs one trial's training script inside a training job.

SageMaker (and the local Docker adapter) start it as `stbench-trainer train`; it turns the
job's hyperparameters back into a typed config, runs the benchmark's Syne Tune style script,
forwards its `[tune-metric]` reports to the metrics channel and reports failures the way
SageMaker reads them (`/opt/ml/output/failure`). No AWS or Docker imports: it runs anywhere.
"""
