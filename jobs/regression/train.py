"""Regression: linear regression with Keras on scikit-learn's diabetes data.

442 patients, 10 baseline measurements (age, sex, BMI, blood pressure, six blood serum
values), and the target: a measure of disease progression one year later (25..346).

The model is a Normalization layer (it learns each feature's mean and variance from the
training data) and a single Dense unit: linear regression, trained by gradient descent.
The target is log-scaled and then standardised for training; predictions are turned
back into the original units for reporting.

Run it by hand from the jobs/ directory:

    python -m regression.train --epochs 100
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from runner.metrics.callback import RunnerMetrics
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from common import kit

PREDICTIONS_FILE = "predictions.png"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = kit.base_parser("Linear regression on the diabetes data.", epochs=100, batch_size=32)
    parser.add_argument("--learning-rate", type=float, default=0.05, help="Adam learning rate")
    parser.add_argument("--test-split", type=kit.fraction, default=0.2, help="share held out for testing")
    parser.add_argument(
        "--validation-split", type=kit.fraction, default=0.2, help="share of the training rows held out"
    )
    return parser.parse_args(argv)


class TargetScaler:
    """y -> (log(y) - mean) / std, and back. Fitted on the training targets only."""

    def __init__(self, y: np.ndarray) -> None:
        log_y = np.log(y)
        self.mean = float(log_y.mean())
        self.std = float(log_y.std())

    def transform(self, y: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = ((np.log(y) - self.mean) / self.std).astype(np.float32)
        return scaled

    def inverse(self, t: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(t, dtype=np.float64) * self.std + self.mean)


def build_model(x_train: np.ndarray) -> keras.Model:
    """Normalization (adapted to x_train) -> Dense(1)."""
    normalize = keras.layers.Normalization(axis=-1)
    normalize.adapt(x_train)
    return keras.Sequential(
        [keras.Input(shape=(x_train.shape[1],), name="features"), normalize, keras.layers.Dense(1)],
        name="diabetes_linear",
    )


def original_units(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Errors in the target's own units (what a person reading the report cares about)."""
    error = y_pred - y_true
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100 * np.mean(np.abs(error) / np.abs(y_true))),
        "r2": float(1 - np.sum(error**2) / np.sum((y_true - y_true.mean()) ** 2)),
    }


def plot_predictions(y_true: np.ndarray, y_pred: np.ndarray, path: Path, r2: float) -> Path:
    """Scatter of predicted against true test targets; perfect predictions lie on the diagonal."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, alpha=0.7, edgecolors="none")
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", label="y = x")
    ax.set_xlabel("true disease progression")
    ax.set_ylabel("predicted disease progression")
    ax.set_title(f"diabetes test set (R² = {r2:.2f})")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    out = kit.start("regression", args)

    data = load_diabetes()
    x = data.data.astype(np.float32)
    y = data.target.astype(np.float64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_split, random_state=args.seed
    )
    scaler = TargetScaler(y_train)
    t_train, t_test = scaler.transform(y_train), scaler.transform(y_test)
    n_train, n_val = kit.split_sizes(len(x_train), args.validation_split)
    kit.log(
        f"data: sklearn-diabetes, {n_train} train / {n_val} validation / {len(x_test)} test "
        f"rows of {x.shape[1]} features; target log-scaled and standardised "
        f"(log mean {scaler.mean:.3f}, std {scaler.std:.3f})"
    )

    model = build_model(x_train)
    # The loss is the mean squared error; "mse" is also listed so it is reported under its own name.
    # These metrics are on the standardised log target (MAPE is large there, as the target is
    # near 0); the errors in the target's own units are computed after training.
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss="mse",
        metrics=["mse", "mae", "mape"],
    )
    model.summary(print_fn=lambda line, **_: print(line, flush=True))

    kit.log("training")
    history = model.fit(
        x_train,
        t_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        verbose=2,
        callbacks=[RunnerMetrics()],  # live curves: runner metrics, runner ui
    )
    kit.log("evaluating on the test set")
    test_metrics = model.evaluate(x_test, t_test, batch_size=args.batch_size, verbose=2, return_dict=True)

    y_pred = scaler.inverse(model.predict(x_test, verbose=0)[:, 0])
    test_original = original_units(y_test, y_pred)
    kit.log("test, original units: " + " ".join(f"{k}={v:.3f}" for k, v in test_original.items()))
    plot_predictions(y_test, y_pred, out / PREDICTIONS_FILE, test_original["r2"])
    kit.log(f"saved plot       -> {out / PREDICTIONS_FILE}")

    kit.finish(
        job="regression",
        model=model,
        history=history,
        out=out,
        args=args,
        test_metrics=test_metrics,
        data_source="sklearn-diabetes",
        reference_x=x_test,
        samples={"train": n_train, "val": n_val, "test": len(x_test)},
        started=started,
        extra={
            "test_original_units": test_original,
            "target_scaling": {"log": True, "mean": scaler.mean, "std": scaler.std},
        },
        extra_artifacts={"predictions": PREDICTIONS_FILE},
    )
    return 0


if __name__ == "__main__":
    sys.exit(kit.run(main))
