"""The regression job: Normalization + Dense(1) on the diabetes data, a log-scaled target, plots."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from .checks import assert_metrics_file, assert_png
from .conftest import JobRun, RunJob
from .formats import FORMATS, check_artifacts

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]

EPOCHS = 20


@pytest.fixture(scope="module")
def regression(run_job: RunJob) -> JobRun:
    return run_job("regression.train", "--epochs", str(EPOCHS), "--formats", ",".join(FORMATS)).check()


def test_metrics_json(regression: JobRun) -> None:
    metrics = regression.metrics
    assert_metrics_file(
        metrics, job="regression", epochs=EPOCHS, train_names=["loss", "mse", "mae", "mape"], formats=FORMATS
    )
    assert metrics["data_source"] == "sklearn-diabetes"
    assert metrics["test"]["mse"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)  # loss is the MSE
    assert sum(metrics["samples"].values()) == 442
    original = metrics["test_original_units"]
    assert set(original) == {"mae", "rmse", "mape", "r2"}
    # A linear model explains roughly 40-50% of the variance here; far better than the mean.
    assert original["r2"] > 0.2, original
    assert 20 < original["mae"] < 80, original
    scaling = metrics["target_scaling"]
    assert scaling["log"] is True
    assert np.exp(scaling["mean"]) == pytest.approx(140, rel=0.2)  # geometric mean of the target
    assert metrics["artifacts"]["predictions"] == "predictions.png"


def test_plots(regression: JobRun) -> None:
    assert_png(regression.outputs / "training_curves.png")
    assert_png(regression.outputs / "predictions.png")
    assert "test, original units: mae=" in regression.stdout


def test_every_format_reproduces_the_trained_model(regression: JobRun) -> None:
    # ONNX included: the Normalization layer's mean and variance must be frozen into the graph.
    assert set(check_artifacts(regression.outputs)) == set(FORMATS)
    with np.load(regression.outputs / "reference.npz") as reference:
        assert reference["x"].shape == (16, 10) and reference["y"].shape == (16, 1)


def test_architecture_is_linear_regression(regression: JobRun) -> None:
    import keras

    model = keras.models.load_model(regression.outputs / "model.keras")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Normalization", "Dense"]
    dense = model.layers[-1]
    assert dense.units == 1 and dense.activation.__name__ == "linear"
    assert model.loss == "mse"


def test_target_scaler_round_trips(job_modules: Path) -> None:
    from regression.train import TargetScaler

    y = np.array([25.0, 100.0, 346.0, 151.0])
    scaler = TargetScaler(y)
    t = scaler.transform(y)
    assert t.mean() == pytest.approx(0, abs=1e-6) and t.std() == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(scaler.inverse(t), y, rtol=1e-5)


def test_check_artifacts_catches_a_mismatch(regression: JobRun, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "outputs"
    shutil.copytree(regression.outputs, copy)
    with np.load(copy / "reference.npz") as reference:
        x, y = reference["x"], reference["y"]
    np.savez(copy / "reference.npz", x=x, y=y + 0.01)
    with pytest.raises(AssertionError, match=r"keras model at .* does not reproduce"):
        check_artifacts(copy, ["keras"])
    (copy / "model.h5").unlink()
    np.savez(copy / "reference.npz", x=x, y=y)
    with pytest.raises(AssertionError, match=r"h5: .* is missing"):
        check_artifacts(copy, "keras,h5")
