"""status and cleanup find a study's jobs by the tag in their Environment, and never take
another study's: a tag that starts the same, another tag's built-in benchmark, or a user
benchmark named like a built-in one; jobs whose name cannot be the tag's need no describe."""

from __future__ import annotations

from typing import Any

from stbench.launch.study_jobs import study_matcher
from stbench.model.naming import JOB_NAME, TAG_ENV, experiment_base, job_name, orchestrator_job_name


def test_user_benchmark_jobs_are_recognised_by_their_tag_once_per_experiment() -> None:
    environments = {
        experiment_base("study", "my_bench", "ASHA", 0): {TAG_ENV: "study"},
        experiment_base("study-2", "my_bench", "ASHA", 0): {TAG_ENV: "study-2"},
        experiment_base("study-2", "mlp_digits", "ASHA", 0): {TAG_ENV: "study-2"},
        experiment_base("study", "mlp_digits", "RS", 3): {TAG_ENV: "study"},
        experiment_base("study", "mlp_digits", "RS", 4): {},  # launched before the variable
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
    assert matches(job_name(experiment_base("study", "mlp_digits", "RS", 4), 0))
    assert not matches(job_name(experiment_base("my-study", "my_bench", "ASHA", 0), 0))
    assert len(described) == 5, "one describe per experiment, none for names not the tag's"


def test_a_user_benchmark_named_like_a_builtin_one_is_matched_by_its_tag() -> None:
    """Tag `study`, benchmark `my_mlp_digits` and tag `study-my`, benchmark `mlp_digits` give
    the same bases: the job's Environment says whose it is."""
    ours = experiment_base("study", "my_mlp_digits", "ASHA", 0)
    theirs = experiment_base("study-my", "mlp_digits", "ASHA", 1)
    assert ours == experiment_base("study-my", "mlp_digits", "ASHA", 0)
    environments = {ours: {TAG_ENV: "study"}, theirs: {TAG_ENV: "study-my"}}

    def describe(name: str) -> dict[str, Any]:
        match = JOB_NAME.match(name)
        assert match is not None
        return {"Environment": environments[match["base"]]}

    for tag, mine, other in (("study", ours, theirs), ("study-my", theirs, ours)):
        matches = study_matcher(tag, describe)
        assert matches(orchestrator_job_name(mine)) and matches(job_name(mine, 3))
        assert not matches(orchestrator_job_name(other)) and not matches(job_name(other, 3))
