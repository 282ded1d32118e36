"""What one experiment's loop counts and against what: its budget, its clock (real time, or a
simulated back-end's), its running counters and its outcome; kept apart from the loop itself
so that callers and tests build them without the loop's imports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from syne_tune.backend.trial_status import Trial


@dataclass(frozen=True)
class Budget:
    max_wallclock_time: float
    n_workers: int
    max_failures: int
    max_num_trials: int | None = None
    max_cost: float | None = None  # USD the trials may spend (see CostMeter)


class Clock(Protocol):
    """Where the loop reads time: real time, or a simulated back-end's simulated time."""

    def time(self) -> float: ...
    def monotonic(self) -> float: ...


class RealClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class LoopState:
    """Counters of one experiment; `elapsed_offset` carries time spent before a resume."""

    clock: Clock = field(default_factory=RealClock)
    start_epoch: float | None = None  # default: the clock's time now
    start_monotonic: float | None = None
    elapsed_offset: float = 0.0
    running: dict[int, Trial] = field(default_factory=dict)
    last_result: dict[int, dict[str, Any]] = field(default_factory=dict)
    trials_started: int = 0
    trials_finished: int = 0
    failures: int = 0
    exhausted: bool = False
    best: float | None = None

    def __post_init__(self) -> None:
        if self.start_epoch is None:
            self.start_epoch = self.clock.time()
        if self.start_monotonic is None:
            self.start_monotonic = self.clock.monotonic()

    @property
    def elapsed(self) -> float:
        assert self.start_monotonic is not None
        return self.elapsed_offset + self.clock.monotonic() - self.start_monotonic


@dataclass(frozen=True)
class ExperimentOutcome:
    status: str  # completed | failed | interrupted
    reason: str
    trials: int
    failures: int
    best: float | None
