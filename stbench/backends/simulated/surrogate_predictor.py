"""Fast predictions of a fitted surrogate pipeline, the same numbers as `pipeline.predict`.

A simulated trial asks the surrogate for one configuration's curve (one row per resource
level). scikit-learn spends about 10 ms on such a call, nearly all of it input validation,
pandas indexing and joblib's dispatch of 50 trees, where the arithmetic takes 0.2 ms: that
made the surrogate the largest cost of a simulated ASHA experiment. `PipelinePredictor`
does the same arithmetic in the same order (feature scaling, one-hot encoding, the mean of
the trees' predictions in float32 inputs), and checks at construction that it reproduces
`pipeline.predict` exactly on the training data; any other pipeline shape, or a mismatch,
falls back to `pipeline.predict`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from syne_tune.blackbox_repository.blackbox_surrogate import Columns

Data = dict[str, np.ndarray] | list[np.ndarray] | np.ndarray


class _Unsupported(Exception):
    """A pipeline step this module does not reproduce: use scikit-learn's own predict."""


class PipelinePredictor:
    """`predict(columns)`: `pipeline.predict` of the frame those column arrays make."""

    def __init__(self, pipeline: Pipeline, training: pd.DataFrame):
        self.pipeline = pipeline
        self.columns = list(training.columns)
        try:
            self.fast = np.array_equal(
                self._fast_predict({c: training[c].to_numpy() for c in self.columns}),
                pipeline.predict(training))
        except _Unsupported:
            self.fast = False

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        if self.fast:
            return self._fast_predict(columns)
        return self.pipeline.predict(pd.DataFrame(columns)[self.columns])

    def _fast_predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        forest = self.pipeline[-1]
        if not isinstance(forest, RandomForestRegressor):
            raise _Unsupported(type(forest).__name__)
        features = np.asarray(_transform(self.pipeline[:-1], columns), dtype=np.float32)
        shape = (len(features), forest.n_outputs_) if forest.n_outputs_ > 1 else len(features)
        total = np.zeros(shape, dtype=np.float64)
        for tree in forest.estimators_:  # RandomForestRegressor.predict's order and dtype
            values = tree.tree_.predict(features)  # DecisionTreeRegressor.predict's arithmetic
            total += values[:, 0] if forest.n_outputs_ == 1 else values[:, :, 0]
        total /= len(forest.estimators_)
        return total


def _transform(step: Any, data: Data) -> Data:
    """What `step.transform(data)` gives, for the steps of Syne Tune's surrogate pipeline
    (`BlackboxSurrogate.make_model_pipeline`); `_Unsupported` for any other step."""
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            data = _transform(inner, data)
        return data
    if isinstance(step, FeatureUnion):
        if step.transformer_weights:
            raise _Unsupported("weighted feature union")
        return np.hstack([_transform(part, data) for _, part in step.transformer_list])
    if isinstance(step, Columns):
        assert isinstance(data, dict)
        return [np.asarray(data[name]) for name in step.names]
    if isinstance(step, StandardScaler):
        matrix = (np.column_stack(data) if isinstance(data, list) else data).astype(np.float64)
        if step.with_mean:
            matrix -= step.mean_
        if step.with_std:
            matrix /= step.scale_
        return matrix
    if isinstance(step, OneHotEncoder):
        if step.drop is not None or step.max_categories is not None or step.min_frequency:
            raise _Unsupported("one-hot encoding with dropped or infrequent categories")
        assert isinstance(data, list)
        return np.column_stack([np.asarray(column, dtype=object) == category
                                for column, categories in zip(data, step.categories_,
                                                              strict=True)
                                for category in categories]).astype(np.float64)
    raise _Unsupported(type(step).__name__)
