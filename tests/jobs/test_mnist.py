"""The MNIST job: the beginner model, the offline fallback to scikit-learn's digits, every format."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from .checks import assert_metrics_file, assert_png
from .conftest import JobRun, RunJob
from .formats import ARTIFACTS, FORMATS, check_artifacts

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]

ALL_FORMATS = ",".join(FORMATS)


@pytest.fixture(scope="module")
def mnist(run_job: RunJob) -> JobRun:
    # No network in the test environment (and downloads are forced to fail): digits fallback.
    return run_job(
        "mnist.train", "--epochs", "1", "--max-train", "600", "--max-test", "200", "--formats", ALL_FORMATS
    ).check()


def test_falls_back_to_digits_and_says_so(mnist: JobRun) -> None:
    assert "MNIST is not available" in mnist.stdout
    assert "falling back to scikit-learn's bundled digits" in mnist.stdout
    assert mnist.metrics["data_source"] == "sklearn-digits-fallback"


def test_logs_are_plain_lines(mnist: JobRun) -> None:
    assert "\r" not in mnist.log, "progress bars in the log: fit() should use verbose=2"
    assert "==> training" in mnist.stdout
    # One summary line per epoch, e.g. "17/17 - 1s - 30ms/step - accuracy: ... - val_loss: ...".
    epoch_lines = [line for line in mnist.stdout.splitlines() if re.match(r"\d+/\d+ - .* - val_loss: ", line)]
    assert len(epoch_lines) == 1, mnist.stdout


def test_metrics_json(mnist: JobRun) -> None:
    metrics = mnist.metrics
    assert_metrics_file(metrics, job="mnist", epochs=1, train_names=["loss", "accuracy"], formats=FORMATS)
    assert metrics["samples"] == {"train": 540, "val": 60, "test": 200}
    # Ten classes: even one epoch on 540 images is far better than guessing.
    assert metrics["test"]["accuracy"] > 0.3
    assert metrics["artifacts"] == {
        **ARTIFACTS,
        "curves": "training_curves.png",
        "reference": "reference.npz",
    }


def test_training_curves_png(mnist: JobRun) -> None:
    assert_png(mnist.outputs / "training_curves.png")


def test_every_format_reproduces_the_trained_model(mnist: JobRun) -> None:
    differences = check_artifacts(mnist.outputs, FORMATS)
    assert set(differences) == set(FORMATS)


def test_reference_batch_is_what_the_model_takes(mnist: JobRun) -> None:
    with np.load(mnist.outputs / "reference.npz") as reference:
        x, y = reference["x"], reference["y"]
    assert x.shape == (16, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and 0.5 < x.max() <= 1.0, "pixels should be divided by 255"
    assert y.shape == (16, 10) and y.dtype == np.float32
    assert (y < 0).any(), "the model outputs logits, not probabilities"


def test_architecture_is_the_beginner_model(mnist: JobRun) -> None:
    import keras

    model = keras.models.load_model(mnist.outputs / "model.keras")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense"]
    assert model.input_shape == (None, 28, 28)
    _, hidden, dropout, logits = model.layers
    assert hidden.units == 128 and hidden.activation.__name__ == "relu"
    assert dropout.rate == pytest.approx(0.2)
    assert logits.units == 10 and logits.activation.__name__ == "linear"
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"] is True
    assert type(model.optimizer).__name__ == "Adam"


def test_digits_fallback_looks_like_mnist(job_modules: Path) -> None:
    from mnist.train import load_digits_as_mnist

    (x_train, y_train), (x_test, y_test) = load_digits_as_mnist(seed=0)
    assert x_train.shape == (1437, 28, 28) and x_test.shape == (360, 28, 28)
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    # Like MNIST: the digit sits in the middle 20x20 box, the 4-pixel border is empty.
    assert x_train[:, :4].max() == 0 and x_train[:, -4:].max() == 0
    assert x_train[:, :, :4].max() == 0 and x_train[:, :, -4:].max() == 0
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_insisting_on_mnist_offline_fails_clearly(run_job: RunJob) -> None:
    result = run_job("mnist.train", "--dataset", "mnist", "--epochs", "1")
    assert result.returncode == 2, result.log[-3000:]
    assert "ERROR: could not load MNIST" in result.stderr
    assert "Traceback" not in result.log
