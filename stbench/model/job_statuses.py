"""SageMaker's words for a training job's and a warm pool's state, as DescribeTrainingJob and
ListTrainingJobs give them (`TrainingJobStatus`, `WarmPoolStatus.Status`): one place for the
job back-end, its local adapter, the local endpoint, launch, status and cleanup.

A trial's status in result rows is Syne Tune's (`syne_tune.backend.trial_status.Status`),
another vocabulary that happens to share some of these words. Pure: no AWS or Docker."""

from __future__ import annotations

IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = (
    "InProgress", "Completed", "Failed", "Stopping", "Stopped",
)
TERMINAL = (COMPLETED, FAILED, STOPPED)  # a job never leaves these
BUSY_JOB_STATUSES = (IN_PROGRESS, STOPPING)  # a stopping job still holds (and bills) its instance

WARM_AVAILABLE, WARM_IN_USE, WARM_REUSED, WARM_TERMINATED = (
    "Available", "InUse", "Reused", "Terminated",
)
# A pool that was reused or terminated never changes again: its retained time is final.
FINAL_POOL_STATUSES = (WARM_REUSED, WARM_TERMINATED)
