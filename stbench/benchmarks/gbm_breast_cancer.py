"""Gradient boosting on scikit-learn's bundled breast-cancer data, reporting validation
log-loss after every round of 10 trees.

A second real CPU benchmark that needs no download, with a different response surface from
mlp_digits. A Syne Tune style script: arguments in, `[tune-metric]` lines out; with
`--st_checkpoint_dir` the model is saved after each round and a restarted trial resumes.
"""

import argparse
import pickle
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from syne_tune import Reporter

TREES_PER_ROUND = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, required=True)
    parser.add_argument("--max_leaf_nodes", type=int, required=True)
    parser.add_argument("--min_samples_leaf", type=int, required=True)
    parser.add_argument("--l2_regularization", type=float, required=True)
    parser.add_argument("--rounds", type=int, default=27)
    parser.add_argument("--st_checkpoint_dir", type=str, default=None)
    args, _ = parser.parse_known_args()
    checkpoint = Path(args.st_checkpoint_dir) / "model.pkl" if args.st_checkpoint_dir else None

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    start = 0
    model = HistGradientBoostingClassifier(
        learning_rate=args.learning_rate, max_leaf_nodes=args.max_leaf_nodes,
        min_samples_leaf=args.min_samples_leaf, l2_regularization=args.l2_regularization,
        early_stopping=False, warm_start=True, max_iter=0, random_state=0,
    )
    if checkpoint is not None and checkpoint.is_file():
        with open(checkpoint, "rb") as handle:
            model, start = pickle.load(handle)
    report = Reporter()
    for round_ in range(start + 1, args.rounds + 1):
        model.set_params(max_iter=round_ * TREES_PER_ROUND)
        model.fit(x_train, y_train)
        loss = log_loss(y_val, model.predict_proba(x_val))
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            with open(checkpoint.with_suffix(".tmp"), "wb") as handle:
                pickle.dump((model, round_), handle)
            checkpoint.with_suffix(".tmp").replace(checkpoint)
        report(round=round_, val_logloss=float(loss),
               val_error=float(1.0 - model.score(x_val, y_val)))


if __name__ == "__main__":
    main()
