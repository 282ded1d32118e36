"""The cost estimate a user reads before anything starts, as `stbench launch` and
`stbench run --backend sagemaker` print it, and `stbench run --dry_run`'s plan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stbench.backends.jobs.sagemaker_checks import CheckedSetup
from stbench.cli.main import main
from stbench.cli.run_plan import run_estimate
from stbench.launch.remote import PlannedJob, launch_estimate, plan_launch
from stbench.model.catalog import load_benchmark
from stbench.model.cost_estimate import ExperimentInstances, dollars, duration, estimate
from stbench.model.errors import UserError
from stbench.model.prices import PRICES_ENV, PriceTable, load_price_table, load_prices
from stbench.model.spec import ExperimentSpec
from stbench.model.trial_pricing import TrialPricing
from stbench.orchestration.store import PreviousRun
from stbench.orchestration.study_runner import PlannedExperiment, StudyPlan

PACKAGED = "SageMaker us-east-1 prices as of 2026-11-27"


@pytest.fixture(autouse=True)
def packaged_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRICES_ENV, raising=False)


class NothingCreated:
    """A launch target that answers the checks and fails the test on any write."""

    def check(self, spec: ExperimentSpec) -> CheckedSetup:
        return CheckedSetup("us-east-1", "123456789012",
                            "arn:aws:iam::123456789012:role/stbench", "bucket", "studies",
                            "123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:1")

    def orchestrator_image(self, setup: CheckedSetup, override: str | None) -> str:
        return "123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-orchestrator:1"

    def existing_jobs(self, tag: str) -> dict[str, str]:
        return {"resnet-cifar10-resnet-cifar10-asha-1-o00": "Completed"}

    def create(self, request: dict[str, Any]) -> None:
        raise AssertionError("planning created a job")

    def publish_code(self, package: Any, study_root: str) -> str:
        raise AssertionError("planning stored code")


def launched(*flags: str, **fields: Any) -> str:
    """The estimate line of `make remote BENCH=resnet_cifar10 METHODS=... SEEDS=2`."""
    values: dict[str, Any] = {"benchmark": "resnet_cifar10", "method": ("ASHA",),
                              "num_seeds": 2, "experiment_tag": "resnet-cifar10", **fields}
    planned = plan_launch(ExperimentSpec(**values), NothingCreated(), force="force" in flags)
    return launch_estimate(planned, load_price_table()).line()


def test_the_default_resnet_launch_is_about_18_dollars() -> None:
    """2 seeds x 4 ml.g4dn.xlarge trials x 3 h, and 2 orchestrators x (3 h + 30 min)."""
    line = launched("force")
    assert line.startswith(f"cost estimate, an upper bound at {PACKAGED}: ")
    assert "ml.g4dn.xlarge $17.66 (trials: 2 experiments x 4 instances x 3 h)" in line
    assert "ml.m5.large $0.81 (orchestrators: 2 jobs x 3.5 h)" in line
    assert line.endswith("study total at most $18.47")
    assert "\n" not in line


def test_both_default_methods_double_it_and_experiments_running_are_not_counted() -> None:
    assert launched("force", method=("ASHA", "RS")).endswith("study total at most $36.94")
    # seed 1 of ASHA completed: relaunching skips it
    line = launched(method=("ASHA", "RS"))
    assert "trials: 3 experiments x 4 instances x 3 h" in line
    assert line.endswith("study total at most $27.70")


def test_warm_pools_add_their_keep_alive_at_the_end() -> None:
    line = launched("force", warm_pool=True)
    assert ("ml.g4dn.xlarge $18.65 (trials: 2 experiments x 4 instances x 3 h = $17.66; "
            "warm pools' keep-alive at the end: 8 pools x 10 min = $0.98)") in line
    assert line.endswith("study total at most $19.45")


def test_max_cost_caps_each_experiments_trials_and_says_so() -> None:
    line = launched("force", max_cost=5.0)
    assert ("ml.g4dn.xlarge $10.00 (trials: 2 experiments x 4 instances x 3 h, capped by "
            "max_cost $5.00 per experiment)") in line
    assert line.endswith("study total at most $10.81")
    loose = launched("force", max_cost=100.0)  # the budget ends first: no cap to mention
    assert "capped" not in loose and loose.endswith("study total at most $18.47")


def test_an_unknown_price_is_said_and_never_counted_as_zero() -> None:
    table = load_price_table()
    line = estimate([ExperimentInstances("ml.p5.48xlarge", 4, 10800, 0, None, "ml.m5.large",
                                         12600)], table).line()
    assert ("ml.p5.48xlarge: no price in the table (trials: 1 experiment x 4 instances x "
            "3 h)") in line
    assert "study total unknown: at least $0.40 plus what ml.p5.48xlarge costs" in line
    assert "STBENCH_PRICES" in line and "$0.00" not in line and "at most" not in line
    alone = estimate([ExperimentInstances("ml.p5.48xlarge", 1, 60)], table).line()
    assert "study total unknown" in alone and "$" not in alone
    assert estimate([], table).line() == ("cost estimate at SageMaker us-east-1 prices as of "
                                          "2026-11-27: nothing starts, $0.00")


def test_trials_and_orchestrators_on_one_type_are_one_entry_with_both_parts() -> None:
    spec = dict(n_workers=2, budget_seconds=600, orchestrator_type="ml.m5.large",
                orchestrator_seconds=2400)
    line = estimate([ExperimentInstances("ml.m5.large", **spec),  # type: ignore[arg-type]
                     ExperimentInstances("ml.m5.large", **spec)],  # type: ignore[arg-type]
                    load_price_table()).line()
    assert ("ml.m5.large $0.23 (trials: 2 experiments x 2 instances x 10 min = $0.08; "
            "orchestrators: 2 jobs x 40 min = $0.15)") in line
    mixed = estimate([ExperimentInstances("ml.m5.large", 2, 600),
                      ExperimentInstances("ml.m5.large", 1, 3600)], load_price_table())
    assert "trials: 1.333 instance-hours in 2 experiments" in mixed.line()


def test_amounts_and_durations_read_as_a_user_expects() -> None:
    assert [dollars(x) for x in (0, 0.004, 0.006, 0.805, 17.664, 1204)] == [
        "$0.00", "<$0.01", "$0.01", "$0.81", "$17.66", "$1,204.00"]
    assert [duration(s) for s in (30, 600, 5400, 10800, 12600)] == [
        "30 s", "10 min", "1.5 h", "3 h", "3.5 h"]


def test_a_sagemaker_run_counts_its_experiments_not_yet_completed() -> None:
    benchmark = load_benchmark("resnet_cifar10")
    spec = ExperimentSpec(benchmark="resnet_cifar10", method=("ASHA", "RS"), num_seeds=2,
                          backend="sagemaker", experiment_tag="t", warm_pool=True,
                          random_seed=1).resolved(benchmark)
    done = PreviousRun([], 10800.0, {"status": "completed"})
    experiments = tuple(PlannedExperiment(method, seed, Path("x"), done if seed == 0 else None)
                        for method in spec.method for seed in spec.seeds)
    pricing = TrialPricing.for_run("sagemaker", spec.instance_type, benchmark, load_prices())
    line = run_estimate(StudyPlan(spec, benchmark, experiments, pricing)).line()
    assert ("ml.g4dn.xlarge $18.65 (trials: 2 experiments x 4 instances x 3 h = $17.66; "
            "warm pools' keep-alive at the end: 8 pools x 10 min = $0.98)") in line
    assert "orchestrator" not in line
    assert line.endswith("study total at most $18.65")


def test_the_table_names_its_region_and_date_and_a_users_table_may_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = load_price_table()
    assert (packaged.region, packaged.as_of) == ("us-east-1", "2026-11-27")
    assert "region" not in load_prices() and "as_of" not in load_prices()
    table = tmp_path / "prices.yaml"
    table.write_text("region: eu-west-1\nas_of: 2027-01-15\nml.m5.large: 0.128\n")
    monkeypatch.setenv(PRICES_ENV, str(table))
    assert load_price_table() == PriceTable({"ml.m5.large": 0.128}, "eu-west-1", "2027-01-15")
    assert load_prices() == {"ml.m5.large": 0.128}
    table.write_text("ml.m5.large: 0.1\n")  # an older table that says neither
    line = estimate([ExperimentInstances("ml.m5.large", 1, 3600)], load_price_table()).line()
    assert line.startswith("cost estimate, an upper bound at SageMaker prices of an unnamed "
                           "region, undated: ml.m5.large $0.10")


@pytest.mark.parametrize(("content", "needle"), [
    ("as_of: last week\nml.m5.large: 0.1\n", "as_of is 'last week', not a date like 2026-11-27"),
    ("region: [us-east-1]\nml.m5.large: 0.1\n", "region is ['us-east-1'], not a region name"),
    ("region: us-east-1\nas_of: 2026-11-27\n", "holds no prices"),
    ("regoin: us-east-1\nml.m5.large: 0.1\n", "other keys: region, as_of"),
])
def test_a_bad_region_or_date_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          content: str, needle: str) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(content)
    monkeypatch.setenv(PRICES_ENV, str(table))
    with pytest.raises(UserError) as info:
        load_price_table()
    assert needle in str(info.value) and str(table) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_local_dry_run_prints_the_plan_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--benchmark", "mlp_digits", "--method", "RS", "ASHA", "--dry_run",
                 "--experiment_tag", "plan", "--num_seeds", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("dry run of experiment tag plan: mlp_digits x RS, ASHA x seeds 0..1")
    assert f"  ASHA seed 1: results in {Path('results/plan/mlp_digits/ASHA/1')}; 2 local " \
           "trials at once" in out
    assert "nothing was created (4 experiments would run)" in out
    assert list(tmp_path.iterdir()) == []
    code = main(["run", "--benchmark", "mlp_digits", "--method", "RS", "--dry_run",
                 "--n_workers", "0"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "stbench: error: --n_workers must be positive, got 0"]
    assert list(tmp_path.iterdir()) == []


def test_planned_job_without_a_skip_reason_is_launched() -> None:
    """launch_estimate reads each orchestrator's own MaxRuntimeInSeconds."""
    spec = replace(ExperimentSpec(benchmark="synthetic_curves", method=("RS",)),
                   instance_type="ml.c5.xlarge", n_workers=1, max_wallclock_time=30.0)
    job = PlannedJob("x-o00", spec, {"StoppingCondition": {"MaxRuntimeInSeconds": 1830}})
    line = launch_estimate([job], load_price_table()).line()
    assert "ml.c5.xlarge <$0.01 (trials: 1 experiment x 1 instance x 30 s)" in line
    assert "ml.m5.large $0.06 (orchestrators: 1 job x 30.5 min)" in line
