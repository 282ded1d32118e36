"""Price table and cost arithmetic: what a study's cost column rests on."""

from __future__ import annotations

from pathlib import Path

import pytest

from stbench.model.errors import UserError
from stbench.model.prices import (
    PRICES_ENV,
    load_prices,
    trial_cost,
)

COMMON = [
    "ml.m5.large", "ml.m5.24xlarge", "ml.c5.xlarge", "ml.c5.18xlarge", "ml.c5n.xlarge",
    "ml.m6i.xlarge", "ml.c6i.xlarge", "ml.g4dn.xlarge", "ml.g4dn.12xlarge", "ml.g4dn.16xlarge",
    "ml.g5.xlarge", "ml.p3.2xlarge", "ml.p4d.24xlarge", "ml.trn1.2xlarge", "ml.trn1.32xlarge",
]


@pytest.fixture(autouse=True)
def packaged_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRICES_ENV, raising=False)


def test_packaged_table_loads_with_common_types_and_positive_prices() -> None:
    prices = load_prices()
    assert set(COMMON) <= set(prices)
    assert all(name.startswith("ml.") for name in prices)
    assert all(isinstance(v, float) and v > 0 for v in prices.values())


def test_bigger_sizes_of_a_family_cost_more() -> None:
    """A cheap guard against a mistyped price: within a family, price grows with size."""
    prices = load_prices()
    for family in ("ml.m5", "ml.c5", "ml.c6i", "ml.m6i", "ml.p3"):
        sizes = sorted((k for k in prices if k.startswith(family + ".")), key=_vcpus)
        values = [prices[k] for k in sizes]
        assert values == sorted(values), family


def _vcpus(name: str) -> int:
    size = name.rsplit(".", 1)[1]
    return {"large": 1, "xlarge": 2}.get(size) or 2 * int(size.removesuffix("xlarge"))


def test_cost_is_price_times_instances_times_billed_and_retained_seconds() -> None:
    prices = {"ml.m5.large": 0.12, "ml.g5.xlarge": 1.5}
    assert trial_cost(prices, "ml.m5.large", 1, 3600) == pytest.approx(0.12)
    assert trial_cost(prices, "ml.m5.large", 1, 1800) == pytest.approx(0.06)
    assert trial_cost(prices, "ml.g5.xlarge", 4, 600) == pytest.approx(1.5 * 4 * 600 / 3600)
    # A retained warm pool is billed at the instance rate, per instance.
    cost = trial_cost(prices, "ml.g5.xlarge", 2, 600, warm_pool_retained_seconds=300)
    assert cost == pytest.approx(1.5 * 2 * 900 / 3600)
    assert trial_cost(prices, "ml.m5.large", 1, 0) == 0.0
    assert trial_cost(prices, "ml.m5.large", 1, 60, None) == pytest.approx(0.12 / 60)


def test_unknown_cost_is_none_not_zero() -> None:
    prices = {"ml.m5.large": 0.12}
    assert trial_cost(prices, "ml.m5.xlarg", 1, 3600) is None
    assert trial_cost(prices, "ml.m5.large", 1, None) is None  # job still running


def test_bad_cost_inputs_raise() -> None:
    with pytest.raises(ValueError):
        trial_cost({"ml.m5.large": 0.12}, "ml.m5.large", 0, 60)
    with pytest.raises(ValueError):
        trial_cost({"ml.m5.large": 0.12}, "ml.m5.large", 1, -1)


def test_env_variable_points_at_a_user_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text("# my discounted prices\nml.m5.large: 0.1\nml.x9.huge: 7\n")
    monkeypatch.setenv(PRICES_ENV, str(table))
    assert load_prices() == {"ml.m5.large": 0.1, "ml.x9.huge": 7.0}
    assert load_prices(Path(__file__).parents[2] / "stbench/model/prices.yaml") != load_prices()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("m5.large: 0.1\n", "'m5.large' is not a SageMaker instance type"),
        ("ml.m5.large: 0\n", "must be > 0"),
        ("ml.m5.large: -0.1\n", "must be > 0"),
        ("ml.m5.large: .nan\n", "must be > 0"),
        ("ml.m5.large: cheap\n", "not a number"),
        ("ml.m5.large: true\n", "not a number"),
        ("- ml.m5.large\n", "must map instance types to USD per hour"),
        ("", "must map instance types to USD per hour"),
        ("ml.m5.large: [0.1\n", "not valid YAML"),
    ],
)
def test_bad_user_table_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, needle: str
) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(content)
    monkeypatch.setenv(PRICES_ENV, str(table))
    with pytest.raises(UserError) as info:
        load_prices()
    message = str(info.value)
    assert needle in message and str(table) in message and "unset STBENCH_PRICES" in message
    assert "\n" not in message


def test_missing_user_table_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read prices file .*nope.yaml"):
        load_prices(tmp_path / "nope.yaml")
