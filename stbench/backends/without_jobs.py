"""What the experiment loop asks of a back-end about jobs, answered for back-ends that run none.

The job back-end bills trials late, rides out throttling and capacity waits, and reads reports
that trail a job's end; process and simulated trials do none of that, so they share these
answers instead of each spelling them out.
"""

from __future__ import annotations

from typing import Any


class WithoutJobs:
    """Mixed into a trial back-end whose trials are no training jobs."""

    def late_annotations(self) -> dict[int, dict[str, Any]]:
        return {}  # nothing is billed after a trial ends

    def retry_counts(self) -> dict[str, int]:
        return {}  # no service calls to throttle, no capacity to wait for

    def end_by(self, deadline: float) -> None:
        pass  # trials start at once: nothing waits that the budget's end must cut short

    def late_results(self) -> list[tuple[int, dict[str, Any]]]:
        return []  # reports arrive as the trials make them
