"""Each job trial's log in the experiment folder, `trials/<id>/std.out`, as process trials have.

A job's output lives with the job service (CloudWatch Logs on SageMaker, a log file per local
container), where a user reading a failed trial's results does not look. The job backend
asks the service for a job's whole log once, when the job has ended and its reports are in,
and keeps it here: one file per trial, a resumed trial's later jobs appended under a line
that names the job. SageMaker merges stdout and stderr into one log, so there is no std.err.
"""

from __future__ import annotations

from pathlib import Path

from stbench.model.atomic_files import atomic_write

STDOUT = "std.out"


def job_header(job: str) -> str:
    return f"----- stbench: log of job {job} -----"


class TrialLogs:
    """`<folder>/<trial_id>/std.out`, written atomically (temp file and rename)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, trial_id: int) -> Path:
        return self.folder / str(trial_id) / STDOUT

    def add_job(self, trial_id: int, job: str, lines: list[str], first: bool) -> None:
        """The log of one of the trial's jobs; the first job's log starts the file."""
        path = self.path(trial_id)
        before = "" if first or not path.is_file() else path.read_text(errors="replace")
        header = [] if first else [job_header(job)]
        atomic_write(path, before + "".join(line + "\n" for line in [*header, *lines]))

    def lines(self, trial_id: int) -> list[str]:
        path = self.path(trial_id)
        return path.read_text(errors="replace").splitlines() if path.is_file() else []
