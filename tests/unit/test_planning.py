"""`stbench run` and `stbench launch` plan through one step (orchestration/planning.py): it
reads `--inputs` and packs a user benchmark's folder once, however many experiments follow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from stbench.cli.main import main
from stbench.launch.remote import plan_launch
from stbench.model import code_package, inputs
from stbench.model.spec import ExperimentSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_cost_estimate import NothingCreated  # noqa: E402
from user_benchmark import write_user_benchmark  # noqa: E402


def counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_launch_packs_a_user_benchmark_once_for_all_its_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = write_user_benchmark(tmp_path)
    packs = counted(monkeypatch, code_package, "_tar")
    spec = ExperimentSpec(benchmark=str(yaml), method=("RS", "ASHA"), num_seeds=2,
                          experiment_tag="mine")
    planned = plan_launch(spec, NothingCreated())
    assert len(planned) == 4
    assert len(packs) == 1
    assert len({id(job.code) for job in planned}) == 1


def test_run_reads_inputs_once_for_all_its_experiments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    parsed = counted(monkeypatch, inputs, "parse_input_flags")
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--num_seeds", "2",
                 "--max_num_trials", "1", "--n_workers", "1", "--max_wallclock_time", "60",
                 "--inputs", f"extra={data}", "--experiment_tag", "once",
                 "--results_root", str(tmp_path / "results")])
    assert code == 0, capsys.readouterr().err
    assert len(parsed) == 1
