"""A recorded study as a Syne Tune blackbox: recorded reports where there are some, a
surrogate's predictions elsewhere.

Syne Tune's `add_surrogate` fits on a full (config x resource) grid and asserts that shape;
a study run with early stopping records most curves only up to where they were stopped. So the
surrogate here is fit on the reports there are, with Syne Tune's own feature pipeline
(`BlackboxSurrogate.make_model_pipeline`: one-hot categoricals, standardized numbers) and the
resource as one more input. A curve recorded up to resource r continues with the surrogate's
increments from r, so it does not jump where the recording ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GroupKFold, cross_val_predict
from syne_tune.blackbox_repository.blackbox_surrogate import BlackboxSurrogate
from syne_tune.config_space import Domain, randint

from stbench.backends.simulated.sources import RecordedCurves, ResourceCurvesBlackbox
from stbench.backends.simulated.surrogate_predictor import PipelinePredictor
from stbench.model.benchmark import Benchmark

CV_FOLDS = 5


@dataclass(frozen=True)
class SurrogateFit:
    """What the metadata and the run's output say about the surrogate."""

    model: str
    rows: int
    configs: int
    cv_rmse: float | None  # cross-validated over held-out configurations (GroupKFold)
    cv_folds: int
    metric_std: float

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "rows": self.rows, "configs": self.configs,
                "cv_rmse": self.cv_rmse, "cv_folds": self.cv_folds,
                "metric_std": self.metric_std}


class RecordedBlackbox(ResourceCurvesBlackbox):
    """Objectives: the metric and cumulative seconds, per resource 1..max_resource."""

    def __init__(self, benchmark: Benchmark, recorded: RecordedCurves, random_seed: int):
        super().__init__(benchmark)
        self.recorded = recorded
        self.domains = {k: v for k, v in benchmark.config_space.items() if isinstance(v, Domain)}
        features, targets, groups = self._training_data()
        self.pipeline = self._pipeline(random_seed)
        self.fit = self._cross_validate(features, targets, groups, random_seed)
        self.pipeline.fit(features, targets)
        self.predictor = PipelinePredictor(self.pipeline, features)

    def _pipeline(self, random_seed: int) -> Any:
        model = RandomForestRegressor(n_estimators=50, min_samples_leaf=2,
                                      random_state=random_seed % (2**31 - 1))
        fidelity = {self.resource_attr: randint(1, self.max_resource)}
        return BlackboxSurrogate.make_model_pipeline(self.domains, fidelity, model)

    def _training_data(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        rows, targets, groups = [], [], []
        for group, (key, curve) in enumerate(self.recorded.curves.items()):
            config = self.recorded.configs[key]
            for resource, (value, seconds) in curve.items():
                rows.append({**config, self.resource_attr: resource})
                targets.append((value, seconds))
                groups.append(group)
        target = np.array(targets, dtype=float)
        seconds = target[:, 1]
        fallback = np.nanmedian(seconds) if np.isfinite(seconds).any() else 1.0
        target[:, 1] = np.where(np.isfinite(seconds), seconds, fallback)
        return pd.DataFrame(rows), target, np.array(groups)

    def _cross_validate(self, features: pd.DataFrame, targets: np.ndarray, groups: np.ndarray,
                        random_seed: int) -> SurrogateFit:
        configs = len(set(groups.tolist()))
        folds = min(CV_FOLDS, configs)
        rmse = None
        if folds >= 2:
            predicted = cross_val_predict(self._pipeline(random_seed), features, targets,
                                          groups=groups, cv=GroupKFold(n_splits=folds))
            rmse = round(float(np.sqrt(np.mean((predicted[:, 0] - targets[:, 0]) ** 2))), 6)
        return SurrogateFit("RandomForestRegressor(n_estimators=50, min_samples_leaf=2) on "
                            f"(config, {self.resource_attr})", len(targets), configs, rmse,
                            folds if folds >= 2 else 0, round(float(np.std(targets[:, 0])), 6))

    def curve_rows(self, config: dict[str, Any]) -> np.ndarray:
        """(max_resource, 2): metric and cumulative seconds; recorded values where there are
        some, else the surrogate's prediction continued from the last recorded resource."""
        resources = self.fidelity_values
        query = {name: np.full(len(resources), config[name]) for name in self.domains}
        query[self.resource_attr] = resources
        predicted = self.predictor.predict(query)
        recorded = self.recorded.curves.get(self.recorded.key(config), {})
        values, seconds = predicted[:, 0].copy(), predicted[:, 1].copy()
        shift_value = shift_seconds = 0.0
        for index, resource in enumerate(resources):
            if int(resource) in recorded:
                value, step = recorded[int(resource)]
                shift_value = value - predicted[index, 0]
                values[index] = value
                if np.isfinite(step):
                    shift_seconds = step - predicted[index, 1]
                    seconds[index] = step
            else:
                values[index] += shift_value
                seconds[index] = max(seconds[index] + shift_seconds, 1e-3)
        return np.column_stack([values, np.cumsum(np.maximum(seconds, 1e-3))])

    def is_recorded(self, config: dict[str, Any]) -> bool:
        return self.recorded.key(config) in self.recorded.curves
