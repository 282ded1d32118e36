"""Train an MLP on scikit-learn's bundled digits data, reporting validation error per epoch.

Real training on real data with no download. A Syne Tune style script: arguments in,
`[tune-metric]` lines out; with `--st_checkpoint_dir` it saves the model after each epoch and
a paused or restarted trial resumes from the last epoch.
"""

import argparse
import pickle
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from syne_tune import Reporter


def load_checkpoint(folder: Path | None) -> tuple[MLPClassifier | None, int]:
    if folder is None or not (folder / "model.pkl").is_file():
        return None, 0
    with open(folder / "model.pkl", "rb") as handle:
        state = pickle.load(handle)
    return state["model"], state["epoch"]


def save_checkpoint(folder: Path | None, model: MLPClassifier, epoch: int) -> None:
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.pkl.tmp"
    with open(tmp, "wb") as handle:
        pickle.dump({"model": model, "epoch": epoch}, handle)
    tmp.replace(folder / "model.pkl")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_units", type=int, required=True)
    parser.add_argument("--learning_rate", type=float, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--st_checkpoint_dir", type=str, default=None)
    args, _ = parser.parse_known_args()
    checkpoint_dir = Path(args.st_checkpoint_dir) if args.st_checkpoint_dir else None

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    classes = np.unique(y)
    model, start_epoch = load_checkpoint(checkpoint_dir)
    if model is None:
        model = MLPClassifier(
            hidden_layer_sizes=(args.n_units,),
            learning_rate_init=args.learning_rate,
            alpha=args.alpha,
            batch_size=args.batch_size,
            random_state=0,
        )
    report = Reporter()
    rng = np.random.default_rng(start_epoch)
    for epoch in range(start_epoch + 1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for start in range(0, len(order), 256):
                batch = order[start : start + 256]
                model.partial_fit(x_train[batch], y_train[batch], classes=classes)
        val_error = 1.0 - model.score(x_val, y_val)
        save_checkpoint(checkpoint_dir, model, epoch)
        report(epoch=epoch, val_error=float(val_error), train_loss=float(model.loss_))


if __name__ == "__main__":
    main()
