"""Remote mode of the orchestrator: the spec arrives as SageMaker hyperparameters, results
live in /opt/ml/checkpoints, and a restarted job resumes instead of starting over."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from stbench.model.spec import ExperimentSpec

ORCHESTRATOR = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "stbench-orchestrator"
SPEC = ExperimentSpec(benchmark="synthetic_curves", method=("RS",), experiment_tag="remote",
                      max_wallclock_time=3, random_seed=1,
                      extra_args={"epoch_duration": "0.02"})


def run_train(root: Path, hyperparameters: dict[str, str]) -> subprocess.CompletedProcess:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    executable = ORCHESTRATOR if ORCHESTRATOR.exists() else Path("stbench-orchestrator")
    return subprocess.run([str(executable), "train"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "STBENCH_OPT_ML": str(root)})


def test_spec_travels_as_string_hyperparameters_and_back() -> None:
    hyperparameters = SPEC.to_hyperparameters()
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert len(hyperparameters) <= 100
    assert ExperimentSpec.from_hyperparameters(hyperparameters) == SPEC


def test_train_runs_the_study_into_checkpoints_and_resumes_after_a_restart(
        tmp_path: Path) -> None:
    first = run_train(tmp_path, SPEC.to_hyperparameters())
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "checkpoints" / "remote" / "synthetic_curves" / "RS" / "0"
    rows = (folder / "results.jsonl").read_text().splitlines()
    assert rows and json.loads((folder / "metadata.json").read_text())["status"] == "completed"
    again = run_train(tmp_path, SPEC.to_hyperparameters())  # SageMaker restarted the job
    assert again.returncode == 0, again.stderr
    assert (folder / "results.jsonl").read_text().splitlines() == rows, "nothing reran"
    assert not (tmp_path / "output" / "failure").exists()


def test_bad_spec_fails_the_job_with_a_reason(tmp_path: Path) -> None:
    done = run_train(tmp_path, {**SPEC.to_hyperparameters(), "method": '["NOPE"]'})
    assert done.returncode == 2
    assert "unknown method 'NOPE'" in (tmp_path / "output" / "failure").read_text()
    assert len(done.stderr.strip().splitlines()) == 1
