"""`stbench-trainer`'s console entry point: catches stop signals before the slow imports.

As a container's PID 1 (SageMaker runs the image's exec-form ENTRYPOINT), a process ignores
SIGTERM until it sets a handler, and importing the trainer (Syne Tune's config space, for
typing hyperparameters) takes a second or two. A StopTrainingJob in that window was lost:
the job trained to its end. Here the handler is set first, the signal is remembered, and
the trainer acts on it as soon as it can.
"""

from __future__ import annotations

import signal
from types import FrameType

EARLY_SIGNALS: list[int] = []  # stop signals that came before the trainer's own handlers


def _remember(signum: int, frame: FrameType | None) -> None:
    EARLY_SIGNALS.append(signum)


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _remember)
    from stbench.trainer.main import main as trainer_main

    return trainer_main()
