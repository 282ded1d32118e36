"""SageMaker training prices: a small editable table, so a study's cost shows next to its results.

The table ships as ``prices.yaml`` next to this module (approximate us-east-1 on-demand list
prices); ``STBENCH_PRICES=/path/to/prices.yaml`` replaces it, for other regions, discounts or
new instance types. Besides ``ml.*`` entries a table may say where and when its prices hold
(``region:``, ``as_of:``), so an estimate can name them. Pure model code: no AWS calls, so it
also works offline and in tests.
"""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from stbench.model.errors import UserError

PRICES_ENV = "STBENCH_PRICES"
PREFIX = "ml."
SECONDS_PER_HOUR = 3600.0
ABOUT_KEYS = ("region", "as_of")  # what a table may say besides its prices


@dataclass(frozen=True)
class PriceTable:
    """The prices and where and when they hold (None: the table does not say)."""

    prices: dict[str, float]
    region: str | None = None
    as_of: str | None = None  # ISO date

    def describe(self) -> str:
        """E.g. 'us-east-1 prices as of 2026-11-27', for a line that shows a dollar amount."""
        where = f"{self.region} prices" if self.region else "prices of an unnamed region"
        return f"{where} as of {self.as_of}" if self.as_of else f"{where}, undated"


def load_prices(path: str | Path | None = None) -> dict[str, float]:
    """USD per instance-hour by instance type, validated so a typo cannot price a study at 0.

    ``path`` wins; else ``$STBENCH_PRICES``; else the packaged table. Raises ``UserError``
    naming the file and the fix when it is unreadable or holds a bad entry.
    """
    return load_price_table(path).prices


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """`load_prices`, with the table's region and date (its optional `region:` and `as_of:`
    keys)."""
    if path is None and os.environ.get(PRICES_ENV):
        path = os.environ[PRICES_ENV]
    if path is None:
        source = f"the packaged {__package__}/prices.yaml"
        fix = "fix it or set STBENCH_PRICES to your own file"
        try:
            text = resources.files(__package__).joinpath("prices.yaml").read_text()
        except OSError as err:
            raise UserError(f"cannot read {source}: {err}; reinstall stbench") from err
    else:
        source = str(path)
        fix = f"fix {path}" + (f" or unset {PRICES_ENV}" if os.environ.get(PRICES_ENV) else "")
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise UserError(f"cannot read prices file {path}: {err.strerror}; {fix}") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise UserError(f"prices file {source} is not valid YAML{line}; {fix}") from err
    if not isinstance(raw, dict) or not raw:
        raise UserError(
            f"prices file {source} must map instance types to USD per hour "
            f"(e.g. 'ml.m5.large: 0.115'); {fix}"
        )
    about = {key: _about(key, raw.pop(key), source, fix) for key in ABOUT_KEYS if key in raw}
    if not raw:
        raise UserError(f"prices file {source} holds no prices (e.g. 'ml.m5.large: 0.115'); "
                        f"{fix}")
    prices: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.startswith(PREFIX) or len(name) <= len(PREFIX):
            raise UserError(
                f"prices file {source}: {name!r} is not a SageMaker instance type "
                f"(names start with '{PREFIX}'; other keys: {', '.join(ABOUT_KEYS)}); {fix}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"prices file {source}: {name} costs {value!r}, not a number; {fix}")
        if not math.isfinite(value) or value <= 0:
            raise UserError(f"prices file {source}: {name} costs {value}, must be > 0; {fix}")
        prices[name] = float(value)
    return PriceTable(prices, about.get("region"), about.get("as_of"))


def _about(key: str, value: object, source: str, fix: str) -> str:
    """`region:` a region name; `as_of:` a date (YAML reads 2026-11-27 as one)."""
    if key == "as_of":
        if isinstance(value, datetime.date):
            return value.isoformat()[:10]
        try:
            return datetime.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise UserError(f"prices file {source}: as_of is {value!r}, not a date like "
                            f"2026-11-27; {fix}") from None
    if not isinstance(value, str) or not value.strip() or " " in value.strip():
        raise UserError(f"prices file {source}: region is {value!r}, not a region name like "
                        f"us-east-1; {fix}")
    return value.strip()


def trial_cost(
    prices: dict[str, float],
    instance_type: str,
    instance_count: int,
    billable_seconds: float | None,
    warm_pool_retained_seconds: float | None = 0,
) -> float | None:
    """USD a trial's job cost: price × instances × (billable + warm-pool retained) seconds.

    SageMaker reports both times per instance (``BillableTimeInSeconds`` and
    ``WarmPoolStatus.ResourceRetainedBillableTimeInSeconds``), and bills a retained warm pool
    at the instance's own rate. None when the type is not in the table or the job has no
    billable time yet (still running), so an unknown cost never reads as free.
    """
    price = prices.get(instance_type)
    if price is None or billable_seconds is None:
        return None
    retained = warm_pool_retained_seconds or 0
    if instance_count < 1 or billable_seconds < 0 or retained < 0:
        raise ValueError(
            f"need instance_count >= 1 and non-negative seconds, got {instance_count}, "
            f"{billable_seconds}, {retained}"
        )
    return price * instance_count * (billable_seconds + retained) / SECONDS_PER_HOUR

