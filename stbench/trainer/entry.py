"""`stbench-trainer`'s console entry point: catches stop signals before the slow imports.

As a container's PID 1 (SageMaker runs the image's exec-form ENTRYPOINT), a process ignores
SIGTERM until it sets a handler, and importing the trainer (Syne Tune's config space, for
typing hyperparameters) takes a second or two. A StopTrainingJob in that window was lost:
the job trained to its end. Here the handler is set first, the signal is remembered
(`early_signals.py`), and the trainer acts on it as soon as it can.
"""

from __future__ import annotations

from stbench.trainer.early_signals import remember_stop_signals


def main() -> int:
    remember_stop_signals()
    from stbench.trainer.main import main as trainer_main

    return trainer_main()
