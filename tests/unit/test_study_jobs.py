"""status and cleanup find a user benchmark's jobs (no built-in list names it) by the tag in
their Environment, and never take another study's: a tag that starts the same, or another
tag's built-in benchmark, whose jobs need no describe at all."""

from __future__ import annotations

from typing import Any

from stbench.launch.study_jobs import study_matcher
from stbench.model.naming import JOB_NAME, TAG_ENV, experiment_base, job_name, orchestrator_job_name


def test_user_benchmark_jobs_are_recognised_by_their_tag_once_per_experiment() -> None:
    environments = {
        experiment_base("study", "my_bench", "ASHA", 0): {TAG_ENV: "study"},
        experiment_base("study-2", "my_bench", "ASHA", 0): {TAG_ENV: "study-2"},
    }
    described: list[str] = []

    def describe(name: str) -> dict[str, Any]:
        described.append(name)
        match = JOB_NAME.match(name)
        assert match is not None
        return {"Environment": environments[match["base"]]}

    ours = experiment_base("study", "my_bench", "ASHA", 0)
    theirs = experiment_base("study-2", "my_bench", "ASHA", 0)
    other_builtin = experiment_base("study-2", "mlp_digits", "ASHA", 0)
    matches = study_matcher("study", describe)
    assert matches(orchestrator_job_name(ours)) and matches(job_name(ours, 1))
    assert matches(job_name(ours, 2, 1))
    assert not matches(job_name(theirs, 0)) and not matches(orchestrator_job_name(theirs))
    assert not matches(job_name(other_builtin, 0))
    assert matches(job_name(experiment_base("study", "mlp_digits", "RS", 3), 0))
    assert len(described) == 2, "one describe per unknown experiment, none for built-ins"
