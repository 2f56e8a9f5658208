"""The malaria job: synthetic data, a Conv-BN-ReLU network that learns it, every format, clear errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .checks import assert_metrics_file, assert_png, png_size
from .conftest import JobRun, RunJob
from .formats import FORMATS, check_artifacts

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]

PER_CLASS = 160
IMAGE_SIZE = 48
EPOCHS = 12
METRICS = ["loss", "accuracy", "auc", "precision", "recall"]


@pytest.fixture(scope="module")
def cells(jobs_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set made the documented way: the script, run from the jobs/ directory."""
    target = tmp_path_factory.mktemp("malaria-data") / "cells"
    done = subprocess.run(
        [sys.executable, "malaria/make_synthetic.py", str(target), "--per-class", str(PER_CLASS)],
        cwd=jobs_copy,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {PER_CLASS} Parasitized, {PER_CLASS} Uninfected" in done.stdout
    return target


@pytest.fixture(scope="module")
def malaria(run_job: RunJob, cells: Path) -> JobRun:
    """A few epochs on the synthetic set, with the data given the runner's way ($RUNNER_INPUT_CELLS)."""
    return run_job(
        "malaria.train",
        "--epochs", str(EPOCHS),
        "--image-size", str(IMAGE_SIZE),
        "--batch-size", "16",
        "--formats", ",".join(FORMATS),
        env={"RUNNER_INPUT_CELLS": str(cells)},
    ).check()  # fmt: skip


def test_synthetic_data_has_the_nih_layout(cells: Path) -> None:
    for name in ("Parasitized", "Uninfected"):
        images = sorted((cells / name).glob("*.png"))
        assert len(images) == PER_CLASS
        width, height = png_size(images[0])
        assert 60 <= width <= 200 and 60 <= height <= 200
    marker = json.loads((cells / "synthetic.json").read_text())
    assert marker["per_class"] == PER_CLASS


def test_synthetic_data_is_deterministic(job_modules: Path, tmp_path: Path) -> None:
    from malaria.make_synthetic import generate

    generate(tmp_path / "a", per_class=3, seed=7)
    generate(tmp_path / "b", per_class=5, seed=7)
    generate(tmp_path / "c", per_class=3, seed=8)
    for name in ("Parasitized", "Uninfected"):
        first = sorted((tmp_path / "a" / name).iterdir())
        again = sorted((tmp_path / "b" / name).iterdir())[:3]
        other = sorted((tmp_path / "c" / name).iterdir())
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
        assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]


def test_parasitized_cells_carry_dark_purple_dots(job_modules: Path, tmp_path: Path) -> None:
    from malaria.make_synthetic import generate
    from PIL import Image

    generate(tmp_path, per_class=20, seed=0)

    def purple_pixels(name: str) -> list[int]:
        counts = []
        for path in sorted((tmp_path / name).glob("*.png")):
            rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            counts.append(int(((b - g > 50) & (r < 170)).sum()))
        return counts

    assert min(purple_pixels("Parasitized")) > 0
    assert max(purple_pixels("Uninfected")) == 0


def test_learns_the_synthetic_cells(malaria: JobRun) -> None:
    """Balanced classes, so chance is 0.5 (and AUC 0.5).

    Typical runs end near 0.95 validation accuracy; the bars are set well below that, and
    accuracy may dip in any one epoch, so the best of the last three counts.
    """
    metrics = malaria.metrics
    history = metrics["history"]
    assert max(history["val_accuracy"][-3:]) >= 0.75, history["val_accuracy"]
    assert metrics["val"]["auc"] >= 0.85, history["val_auc"]
    assert metrics["test"]["accuracy"] >= 0.65, metrics["test"]
    assert history["loss"][-1] < history["loss"][0]


def test_metrics_json(malaria: JobRun, cells: Path) -> None:
    metrics = malaria.metrics
    assert_metrics_file(metrics, job="malaria", epochs=EPOCHS, train_names=METRICS, formats=FORMATS)
    assert metrics["data_source"] == "synthetic-cells"
    assert metrics["data_dir"] == str(cells)
    assert metrics["image_size"] == IMAGE_SIZE
    assert metrics["classes"] == {"0": "Uninfected", "1": "Parasitized"}
    assert sum(metrics["samples"].values()) == 2 * PER_CLASS
    assert metrics["samples"]["test"] == metrics["samples"]["val"] == round(2 * PER_CLASS * 0.15)


def test_logs(malaria: JobRun, cells: Path) -> None:
    assert "\r" not in malaria.log
    assert f"data: {cells}: {2 * PER_CLASS} images ({PER_CLASS} parasitized)" in malaria.stdout
    assert f"Epoch {EPOCHS}/{EPOCHS}" in malaria.stdout


def test_training_curves_png(malaria: JobRun) -> None:
    assert_png(malaria.outputs / "training_curves.png")


def test_every_format_reproduces_the_trained_model(malaria: JobRun) -> None:
    assert set(check_artifacts(malaria.outputs)) == set(FORMATS)
    with np.load(malaria.outputs / "reference.npz") as reference:
        x, y = reference["x"], reference["y"]
    assert x.shape == (16, IMAGE_SIZE, IMAGE_SIZE, 3) and x.dtype == np.float32
    assert x.max() > 1.0, "the model takes 0..255 pixels and rescales them itself"
    assert y.shape == (16, 1) and ((y >= 0) & (y <= 1)).all(), "sigmoid outputs"


def test_architecture_batch_norm_between_conv_and_relu(malaria: JobRun) -> None:
    import keras

    model = keras.models.load_model(malaria.outputs / "model.keras")
    layers = model.layers
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds[0] == "Rescaling"
    convs = [i for i, kind in enumerate(kinds) if kind == "Conv2D"]
    assert len(convs) >= 2
    for i in convs:
        conv = layers[i]
        assert kinds[i + 1 : i + 4] == ["BatchNormalization", "ReLU", "MaxPooling2D"], kinds
        assert conv.activation.__name__ == "linear", "the activation comes after BatchNormalization"
        assert conv.use_bias is False, "BatchNormalization's offset replaces the bias"
    assert "Dense" in kinds[convs[-1] :]
    head = layers[-1]
    assert kinds[-1] == "Dense" and head.units == 1 and head.activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"


def test_missing_data_dir_is_a_clear_error(run_job: RunJob, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_job("malaria.train", "--epochs", "1", env={"RUNNER_INPUT_CELLS": str(missing)})
    assert result.returncode == 2, result.log[-3000:]
    assert f"data directory {missing} (from $RUNNER_INPUT_CELLS) does not exist" in result.stderr
    assert "make_synthetic.py" in result.stderr
    assert "Traceback" not in result.log
    assert not (result.outputs / "metrics.json").exists()


@pytest.mark.parametrize("present", [[], ["Parasitized"]])
def test_data_dir_without_class_folders_is_a_clear_error(
    job_modules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], present: list[str]
) -> None:
    from common import kit
    from malaria import train

    for name in present:
        (tmp_path / name).mkdir()
    code = kit.run(lambda: train.main(["--data", str(tmp_path), "--outputs", str(tmp_path / "out")]))
    assert code == kit.EXIT_JOB_ERROR
    error = capsys.readouterr().err
    assert "Uninfected" in error and "make_synthetic.py" in error
    assert ("has no Uninfected or Parasitized folder" in error) == (not present)
