"""The three example jobs end to end: `runner submit` on the embedded default, then every saved model
format downloaded from the store must load and reproduce the in-memory model's predictions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, Result, make_malaria_cells, submitted_run
from tests.jobs.formats import check_artifacts

Runner = Callable[..., Result]
ALL_FORMATS = ["keras", "h5", "savedmodel", "onnx"]

pytestmark = pytest.mark.tensorflow


def submit_and_download(runner: Runner, manifest: Path, tmp_path: Path, *extra: str) -> tuple[str, Path]:
    result = runner("submit", str(manifest), *extra, timeout=900)
    assert result.code == 0, result.output[-4000:]
    run = submitted_run(result)
    target = tmp_path / "artifacts"
    downloaded = runner("artifacts", run, "--download", str(target))
    assert downloaded.code == 0, downloaded.output
    return run, target


def test_mnist_trains_and_every_format_reproduces_its_predictions(runner: Runner, tmp_path: Path) -> None:
    run, artifacts = submit_and_download(runner, REPO / "jobs" / "mnist" / "job.yaml", tmp_path)
    metrics = json.loads((artifacts / "outputs" / "metrics.json").read_text())
    log = (artifacts / "logs" / "attempt-1.log").read_text()
    # no network here: the job must say it fell back to scikit-learn's digits
    assert metrics["data_source"] == "sklearn-digits-fallback"
    assert "digits" in log.lower()
    assert metrics["test"]["accuracy"] > 0.8
    assert sorted(metrics["formats"]) == sorted(ALL_FORMATS)
    assert (artifacts / "outputs" / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    check_artifacts(artifacts / "outputs", ALL_FORMATS)
    summary = json.loads((artifacts / "run.json").read_text())
    assert (summary["id"], summary["state"], summary["exitCode"]) == (run, "succeeded", 0)


def test_mnist_on_two_workers_trains_one_model_that_predicts(runner: Runner, tmp_path: Path) -> None:
    """Two containers (docker, where an engine answers) or two processes train together; the chief's
    model is the run's, and every format of it reproduces its predictions like the single-worker one."""
    run, artifacts = submit_and_download(runner, REPO / "jobs" / "mnist-multiworker" / "job.yaml", tmp_path)
    metrics = json.loads((artifacts / "outputs" / "metrics.json").read_text())
    assert (metrics["workers"], metrics["data_source"]) == (2, "sklearn-digits-fallback")
    assert metrics["test"]["accuracy"] > 0.8
    check_artifacts(artifacts / "outputs", ALL_FORMATS)
    worker = json.loads((artifacts / "workers" / "1" / "outputs" / "metrics.json").read_text())
    assert worker["worker"] == 1 and worker["test"]["accuracy"] == metrics["test"]["accuracy"]
    assert "2 replicas train in sync" in (artifacts / "workers" / "1" / "logs" / "attempt-1.log").read_text()
    logs = runner("logs", run)
    assert "[worker 0] " in logs.output and "[worker 1] " in logs.output


def test_malaria_reads_its_input_and_reports_classifier_metrics(runner: Runner, tmp_path: Path) -> None:
    cells = make_malaria_cells(tmp_path / "cells", 60)
    _, artifacts = submit_and_download(
        runner, REPO / "jobs" / "malaria" / "job.yaml", tmp_path, "--input", f"cells={cells}"
    )
    metrics = json.loads((artifacts / "outputs" / "metrics.json").read_text())
    for name in ("accuracy", "auc", "precision", "recall"):
        assert 0.0 <= metrics["test"][name] <= 1.0, name
    check_artifacts(artifacts / "outputs", ALL_FORMATS)


def test_malaria_without_data_fails_with_a_hint(runner: Runner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner(
        "submit", str(REPO / "jobs" / "malaria" / "job.yaml"), "--input", f"cells={empty}", timeout=300
    )
    assert result.code != 0
    assert "make_synthetic" in result.stdout


def test_regression_saves_a_scatter_plot_and_reproduces_predictions(runner: Runner, tmp_path: Path) -> None:
    _, artifacts = submit_and_download(runner, REPO / "jobs" / "regression" / "job.yaml", tmp_path)
    metrics = json.loads((artifacts / "outputs" / "metrics.json").read_text())
    assert {"mse", "mae", "mape"} <= set(metrics["test"])
    pngs = sorted(path.name for path in (artifacts / "outputs").glob("*.png"))
    assert len(pngs) >= 2, pngs  # the training curve and the y_test vs y_pred scatter
    check_artifacts(artifacts / "outputs", ALL_FORMATS)
