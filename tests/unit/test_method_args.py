"""Method settings: listed with their defaults, set with --method_args or in a study file,
checked with one-line errors, carried by the spec to launched jobs, and variants of one
method run side by side in one study, paired by seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cost_estimate import NothingCreated  # tests/unit is on sys.path

from stbench.cli.main import main
from stbench.launch.remote import plan_launch
from stbench.launch.study_file import load_study
from stbench.methods.registry import METHODS, MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.model.method_args import MethodArgs
from stbench.model.naming import MAX_JOB_NAME
from stbench.model.spec import ExperimentSpec


def context(seed: int = 1) -> MethodContext:
    return MethodContext.for_benchmark(load_benchmark("synthetic_curves"), seed)


def test_methods_details_lists_each_setting_with_type_default_and_meaning(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods", "--details"]) == 0
    out = capsys.readouterr().out
    assert ("    grace_period (int, >= 1; default 1): resource of the lowest rung: every trial "
            "runs this far") in out
    assert "    reduction_factor (float, > 1; default 3): " in out
    assert "    num_initial_random (int, >= 1; default auto (max(4, hyperparameters + 1)))" \
        in out
    for method in METHODS.values():
        block = out.split(f"\n{method.name} ", 1)[1] if f"\n{method.name} " in out else out
        for setting in method.settings:
            assert f"    {setting.name} ({setting.kind.__name__}" in block
    assert [s.name for s in METHODS["ASHA"].settings] == [
        "grace_period", "reduction_factor", "brackets"]
    assert {s.name for s in METHODS["REA"].settings} == {"population_size", "sample_size"}


def test_each_method_builds_with_every_setting_changed() -> None:
    """Every declared setting is a keyword its scheduler accepts."""
    for method in METHODS.values():
        for setting in method.settings:
            value = {int: 5, float: 0.3 if setting.maximum == 1 else 4.0, bool: True,
                     str: setting.choices[-1] if setting.choices else "x"}[setting.kind]
            args = method.check(MethodArgs(method.name, ((setting.name, value),)))
            assert method.make_scheduler(context(), args) is not None, args.label


def test_settings_reach_the_schedulers() -> None:
    asha = get_method("ASHA").make_scheduler(
        context(), MethodArgs.parse("ASHA:reduction_factor=4,grace_period=2"))
    assert asha.reduction_factor == 4
    assert [level for level, _ in asha.brackets[0].rungs] == [8, 2]  # max_resource 9
    bo = get_method("BO").make_scheduler(context(), MethodArgs.parse("BO:num_initial_random=7"))
    assert bo.searcher.num_initial_random == 7
    mobster = get_method("MOBSTER").make_scheduler(
        context(), MethodArgs.parse("MOBSTER:num_initial_random=2,resource_kernel=exp-decay-sum"))
    assert mobster.searcher.num_initial_random == 2 and mobster.searcher._exp_decay
    rea = get_method("REA").make_scheduler(context(), MethodArgs.parse("REA:population_size=20"))
    assert rea.searcher.population_size == 20


def test_labels_are_canonical() -> None:
    asha = get_method("ASHA")
    assert asha.check(MethodArgs.parse("ASHA:reduction_factor=4.0")).label == \
        "ASHA(reduction_factor=4)"
    assert asha.check(MethodArgs.parse("ASHA:reduction_factor=4,grace_period=2")).label == \
        "ASHA(grace_period=2,reduction_factor=4)"  # declared order
    assert asha.check(MethodArgs.parse("ASHA:grace_period=1")).label == "ASHA"  # the default
    label = "ASHA(grace_period=2,reduction_factor=2.5)"
    assert MethodArgs.parse(label).label == label
    assert MethodArgs.parse("ASHA:grace_period=2,reduction_factor=2.5").text == \
        "ASHA:grace_period=2,reduction_factor=2.5"


def test_method_args_survive_the_trip_to_a_launched_job() -> None:
    spec = ExperimentSpec(benchmark="synthetic_curves", method=("ASHA", "RS"),
                          method_args=(MethodArgs.parse("ASHA:reduction_factor=4"),
                                       MethodArgs.parse("ASHA")))
    back = ExperimentSpec.from_hyperparameters(spec.to_hyperparameters())
    assert back == spec
    assert [v.label for v in back.variants()] == ["ASHA(reduction_factor=4)", "ASHA", "RS"]


BAD = [
    (["ASHA:reduction=4"], "ASHA has no setting 'reduction'; valid ones: grace_period, "
     "reduction_factor, brackets; did you mean 'reduction_factor'?"),
    (["ASHA:reduction_factor=1"], "ASHA setting reduction_factor must be > 1, got 1"),
    (["ASHA:grace_period=2.5"], "ASHA setting grace_period must be an integer (>= 1), got 2.5"),
    (["ASHA:grace_period=50"], "ASHA(grace_period=50) does not fit benchmark synthetic_curves "
     "(epoch up to 9)"),
    (["BO:num_initial_random=3"], "--method_args 'BO:num_initial_random=3' is for BO, which "
     "--method does not list"),
    (["ASHA:reduction_factor"], "'reduction_factor' is not key=value"),
    (["ASHA", "ASHA:grace_period=1"], "method ASHA is given twice"),
    (["ASHA:brackets=two"], "ASHA setting brackets must be an integer (>= 1), got two"),
]


@pytest.mark.parametrize(("method_args", "message"), BAD)
def test_bad_method_args_are_one_line_and_create_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], method_args: list[str],
        message: str) -> None:
    results = tmp_path / "results"
    code = main(["run", "--backend", "simulated", "--benchmark", "synthetic_curves",
                 "--method", "ASHA", "--method_args", *method_args,
                 "--results_root", str(results), "--experiment_tag", "bad"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("stbench: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not results.exists()


def test_two_variants_of_one_method_run_in_one_study_paired_by_seed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    code = main(["run", "--backend", "simulated", "--benchmark", "synthetic_curves",
                 "--method", "ASHA", "RS", "--method_args", "ASHA", "ASHA:reduction_factor=2",
                 "ASHA:reduction_factor=4,grace_period=2", "--max_wallclock_time", "300",
                 "--jobs", "1", "--results_root", str(results), "--experiment_tag", "var"])
    out = capsys.readouterr().out
    assert code == 0
    labels = ["ASHA", "ASHA(reduction_factor=2)", "ASHA(grace_period=2,reduction_factor=4)",
              "RS"]
    assert "synthetic_curves x " + ", ".join(labels) in out
    meta, rows = {}, {}
    for label in labels:
        folder = results / "var" / "synthetic_curves" / label / "0"
        meta[label] = json.loads((folder / "metadata.json").read_text())
        rows[label] = (folder / "results.jsonl").read_text()
        assert meta[label]["method"] == label
        assert label in out  # the results table names each variant
    assert meta["ASHA(reduction_factor=2)"]["method_settings"] == {
        "grace_period": 1, "reduction_factor": 2.0, "brackets": 1}
    assert meta["ASHA"]["method_settings"]["reduction_factor"] == 3.0
    assert meta["ASHA"]["spec"]["method_args"] == [
        "ASHA", "ASHA:reduction_factor=2", "ASHA:grace_period=2,reduction_factor=4"]
    assert len({m["scheduler_seed"] for m in meta.values()}) == 1  # paired with the base
    assert len({rows[label] for label in labels}) == len(labels)  # each ran its own settings


def test_a_study_file_sets_method_args(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text("experiment_tag: s\nbenchmarks: [synthetic_curves]\nmethods: [ASHA, BO]\n"
                     "method_args: ['ASHA:reduction_factor=2', 'ASHA:reduction_factor=4', "
                     "'BO:num_initial_random=8']\n")
    (spec,) = load_study(study, {}).specs
    assert [v.label for v in spec.variants()] == [
        "ASHA(reduction_factor=2)", "ASHA(reduction_factor=4)", "BO(num_initial_random=8)"]
    study.write_text("experiment_tag: s\nbenchmarks: [synthetic_curves]\nmethods: [ASHA]\n"
                     "method_args: ASHA:reduction_factor=2\n")
    with pytest.raises(Exception, match="'method_args' must be a list"):
        load_study(study, {})


def test_launch_gives_each_variant_its_own_jobs_and_results() -> None:
    spec = ExperimentSpec(benchmark="synthetic_curves", method=("ASHA",), num_seeds=2,
                          experiment_tag="a-long-study-tag-of-variants",
                          method_args=(MethodArgs.parse("ASHA:reduction_factor=2"),
                                       MethodArgs.parse("ASHA:reduction_factor=4")))
    planned = plan_launch(spec, NothingCreated())
    assert len(planned) == 4
    names = [job.name for job in planned]
    assert len(set(names)) == 4 and all(len(n) <= MAX_JOB_NAME for n in names)
    uris = {job.request["CheckpointConfig"]["S3Uri"] for job in planned}
    assert len(uris) == 4
    for job in planned:
        remote = ExperimentSpec.from_hyperparameters(job.request["HyperParameters"])
        (variant,) = remote.variants()
        assert variant.label in ("ASHA(reduction_factor=2)", "ASHA(reduction_factor=4)")
        tags = {t["Key"]: t["Value"] for t in job.request["Tags"]}
        assert not set("(),") & set(tags["stbench:method"])  # SageMaker's tag alphabet
