"""The example manifests: valid for the runner, and their commands parse in their jobs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import JOBS_DIR

JOBS = ["mnist", "malaria", "regression"]


def manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((JOBS_DIR / name / "job.yaml").read_text())
    return data


@pytest.mark.parametrize("name", JOBS)
def test_manifest_shape(name: str) -> None:
    doc = manifest(name)
    assert doc["apiVersion"] == "runner/v1" and doc["kind"] == "Job"
    assert doc["metadata"]["name"] == name
    spec = doc["spec"]
    assert spec["image"]["base"] == "tensorflow/tensorflow:2.21.0-gpu"
    context = (JOBS_DIR / name / spec["image"]["context"]).resolve()
    assert context == JOBS_DIR.resolve()
    assert (context / spec["image"]["requirements"]).is_file()
    assert spec["command"][:3] == ["python", "-m", f"{name}.train"]
    assert (context / name / "__init__.py").is_file() and (context / "common" / "__init__.py").is_file()
    assert spec["resources"]["gpu"] == 0
    assert spec["outputs"]["path"] == "/outputs"


def test_malaria_reads_cells_input() -> None:
    (cells,) = manifest("malaria")["spec"]["inputs"]
    assert cells == {"name": "cells", "source": "data/cells", "path": "/data/cells"}


def test_requirements_leave_tensorflow_to_the_base_image() -> None:
    lines = (JOBS_DIR / "requirements.txt").read_text().splitlines()
    names = {line.split(">")[0].split("=")[0].strip() for line in lines if line and not line.startswith("#")}
    assert names == {"scikit-learn", "matplotlib", "h5py", "tf2onnx", "onnx"}


def test_dockerignore_keeps_data_out_of_the_context() -> None:
    patterns = (JOBS_DIR / ".dockerignore").read_text().split()
    assert {"*/data/", "**/__pycache__", "*.pyc"} <= set(patterns)


@pytest.mark.parametrize("name", [*JOBS, "mnist-multiworker"])
def test_runner_accepts_the_manifest(name: str) -> None:
    loader = pytest.importorskip("runner.spec.loader")
    loaded = loader.load_manifest(JOBS_DIR / name / "job.yaml")
    assert loaded.manifest.name == name


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", JOBS)
def test_command_arguments_parse(name: str, job_modules: Path) -> None:
    pytest.importorskip("tensorflow")
    module = importlib.import_module(f"{name}.train")
    args = module.parse_args(manifest(name)["spec"]["command"][3:])
    assert args.formats == ["keras", "h5", "savedmodel", "onnx"]


def test_the_nightly_regression_is_the_regression_job_on_a_schedule() -> None:
    loader = pytest.importorskip("runner.spec.loader")
    nightly = loader.load_manifest(JOBS_DIR / "regression" / "nightly.yaml").manifest
    daily = loader.load_manifest(JOBS_DIR / "regression" / "job.yaml").manifest
    assert nightly.name == "regression-nightly"
    assert nightly.spec.command[:3] == daily.spec.command[:3]
    assert nightly.spec.schedule is not None and nightly.spec.schedule.cron == "0 2 * * *"
    assert nightly.spec.schedule.time_zone == "Asia/Seoul"
    assert nightly.spec.retention is not None and nightly.spec.retention.keep_last == 7


def test_the_multiworker_example_runs_mnist_on_two_workers() -> None:
    spec = manifest("mnist-multiworker")["spec"]
    assert spec["workers"] == 2 and spec["retries"] == 0  # a cluster run's workers restart only together
    assert spec["command"][:3] == ["python", "-m", "mnist.multiworker"]
    assert spec["image"] == manifest("mnist")["spec"]["image"]
