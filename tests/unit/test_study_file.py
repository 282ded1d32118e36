"""Study files under examples/: the bundled tutorial loads, and command-line flags win."""

from __future__ import annotations

from pathlib import Path

import pytest

from stbench.launch.study_file import load_study
from stbench.model.errors import UserError

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial.yaml"


def test_tutorial_study_has_one_spec_per_benchmark_and_flags_override_it() -> None:
    study = load_study(TUTORIAL, {"max_wallclock_time": 60.0, "role": "arn:x"})
    specs = study.specs
    assert [s.benchmark for s in specs] == ["mlp_digits", "synthetic_curves"]
    assert all(s.method == ("ASHA", "MOBSTER", "RS") and s.num_seeds == 2 for s in specs)
    assert study.max_instances == 40
    assert all(s.max_wallclock_time == 60.0 and s.warm_pool and s.role == "arn:x" for s in specs)


@pytest.mark.parametrize("text, needle", [
    ("experiment_tag: t\nbenchmarks: [a]\n", "'methods' is missing"),
    ("experiment_tag: t\nbenchmarks: [a]\nmethods: [RS]\ncolour: red\n", "unknown key .colour."),
    ("experiment_tag: t\nbenchmarks: [a]\nmethods: [RS]\noverrides: {speed: 1}\n",
     "override .speed. is not a `stbench run` flag"),
    ("experiment_tag: t\n  benchmarks: [a\n", "malformed YAML"),
    ("experiment_tag: t\nbenchmarks: [a]\nmethods: [RS]\nmax_instances: 0\n",
     "max_instances must be a positive integer"),
])
def test_bad_study_files_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=needle.replace("(", r"\(")) as info:
        load_study(path, {})
    assert str(path) in str(info.value) and "\n" not in str(info.value)
