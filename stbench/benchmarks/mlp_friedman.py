"""Train an MLP regressor on generated Friedman-1 data, reporting validation MSE per epoch.

Real training whose best possible score is known: the data are scikit-learn's
``make_friedman1`` (a fixed random_state, no download), y = f(x) + N(0, 1) noise with f known in
closed form, so no model can beat the Bayes risk, the mean squared noise on the validation
set (:func:`bayes_risk`, the benchmark's optimum). Unlike the digits MLP, the space has
plenty of headroom: final MSEs range over an order of magnitude, learning rate and width
interact, and slow-learning configs look bad early (a multi-fidelity trap and opportunity).
A Syne Tune style script: arguments in, `[tune-metric]` lines out. One BLAS thread per trial,
so two workers on two cores do not slow each other down.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from syne_tune import Reporter
from threadpoolctl import threadpool_limits

N_TRAIN = 4000
N_VALIDATION = 2000
N_FEATURES = 10
NOISE_SD = 1.0
DATA_SEED = 0


def friedman1_mean(x: np.ndarray) -> np.ndarray:
    """The noise-free Friedman-1 function (what make_friedman1 adds noise to)."""
    return (
        10.0 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20.0 * (x[:, 2] - 0.5) ** 2
        + 10.0 * x[:, 3]
        + 5.0 * x[:, 4]
    )


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): the same split in every trial."""
    x, y = make_friedman1(
        n_samples=N_TRAIN + N_VALIDATION, n_features=N_FEATURES, noise=NOISE_SD,
        random_state=DATA_SEED,
    )
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def bayes_risk() -> float:
    """Validation MSE of the true function: the exact lower bound on val_mse."""
    _, _, x_val, y_val = load_data()
    return float(np.mean((y_val - friedman1_mean(x_val)) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser()
    tunable = {"n_units": int, "learning_rate": float, "alpha": float, "batch_size": int,
               "activation": str}
    for name, kind in tunable.items():
        parser.add_argument(f"--{name}", type=kind, required=True)
    parser.add_argument("--epochs", type=int, default=27)
    args, _ = parser.parse_known_args()

    threadpool_limits(1)
    x_train, y_train, x_val, y_val = load_data()
    # Standardized targets train well at every learning rate; MSE is reported in y's units.
    center, scale = float(y_train.mean()), float(y_train.std())
    model = MLPRegressor(
        hidden_layer_sizes=(args.n_units,),
        activation=args.activation,
        learning_rate_init=args.learning_rate,
        alpha=args.alpha,
        batch_size=args.batch_size,
        random_state=0,
    )
    report = Reporter()
    for epoch in range(1, args.epochs + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, (y_train - center) / scale)  # one pass over the data
        predicted = model.predict(x_val) * scale + center
        val_mse = float(np.mean((predicted - y_val) ** 2))
        report(epoch=epoch, val_mse=val_mse if np.isfinite(val_mse) else 1e6)


if __name__ == "__main__":
    main()
