"""Inputs on a real control plane: a local directory uploaded once into the store (moto's s3) under its
content address and fetched by the agent in the pod before the command starts; the malaria example with its
local cell images as input."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, run_runner, status_of, submitted_run
from tests.jobs.formats import check_artifacts
from tests.realcluster.helpers import ON_GPU_NODES, Job, small_job

pytestmark = ON_GPU_NODES
Runner = Callable[..., Result]


def submit(path: Path, *extra: str, timeout: float = 600) -> Result:
    return run_runner("submit", "--backend", "kubernetes", *extra, str(path), timeout=timeout)


def test_a_local_input_is_uploaded_once_and_read_in_the_pod(
    job: Job, python_base_image: str, tmp_path: Path, s3: Any, real_store: str
) -> None:
    data = tmp_path / "cells"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.txt").write_text("beta\n")
    path = small_job(
        job,
        python_base_image,
        "reader",
        'cat "$RUNNER_INPUT_CELLS/a.txt" "$RUNNER_INPUT_CELLS/sub/b.txt"',
        inputs=[{"name": "cells", "source": str(data), "path": "/data/cells"}],
    )
    first = submit(path)
    assert first.code == 0, first.output[-3000:]
    assert "input 'cells': " in first.output and "uploading 2 file(s)" in first.output
    run = submitted_run(first)
    assert re.search(rf"^\[{run}\] alpha$", first.stdout, re.MULTILINE), first.stdout
    assert re.search(rf"^\[{run}\] beta$", first.stdout, re.MULTILINE), first.stdout
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=real_store, Prefix="runs/inputs/")["Contents"]]
    assert len(keys) == 3 and all(re.match(r"runs/inputs/sha256-[0-9a-f]{64}/", key) for key in keys), keys

    again = submit(path)
    assert again.code == 0, again.output[-3000:]
    assert "already in the store" in again.output and "uploading" not in again.output


def test_a_missing_local_input_is_refused_before_anything_is_built(job: Job, python_base_image: str) -> None:
    path = small_job(
        job,
        python_base_image,
        "missing",
        "true",
        inputs=[{"name": "cells", "source": "/nowhere/cells", "path": "/data/cells"}],
    )
    result = submit(path)
    assert result.code == 2, result.output
    assert "input 'cells': /nowhere/cells does not exist" in result.stderr
    assert "Traceback" not in result.output and "image" not in result.stderr


def on_a_gpu(manifest: Path) -> None:
    text = manifest.read_text()
    assert "resources: {gpu: 0," in text
    manifest.write_text(text.replace("resources: {gpu: 0,", "resources: {gpu: 1, gpuType: H100,"))


@pytest.mark.tensorflow
@pytest.mark.usefixtures("tensorflow_base_image")
def test_malaria_trains_on_the_cluster_from_its_local_cell_images(
    tmp_path: Path, real_store: str, example_wheelhouse: Path, s3: Any
) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_wheelhouse, jobs / "wheelhouse")
    cells = jobs / "malaria" / "data" / "cells"
    made = subprocess.run(
        [sys.executable, "malaria/make_synthetic.py", str(cells), "--per-class", "60"],
        cwd=jobs,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    manifest = jobs / "malaria" / "job.yaml"
    on_a_gpu(manifest)
    manifest.write_text(manifest.read_text().replace('--epochs, "10"', '--epochs, "2"'))

    result = submit(manifest, timeout=1500)
    assert result.code == 0, result.output[-4000:]
    files = len([path for path in cells.rglob("*") if path.is_file()])
    assert files > 120  # 60 a class, and what make_synthetic writes beside them
    assert f"input 'cells': {cells}: uploading {files} file(s)" in result.output, result.output[-4000:]
    run = submitted_run(result)
    assert f"runner: input 'cells': fetching {files} file(s)" in result.stdout
    assert (status_of(run)["state"]) == "succeeded"
    downloaded = tmp_path / "downloaded"
    fetched = run_runner("artifacts", run, "--download", str(downloaded))
    assert fetched.code == 0, fetched.output
    check_artifacts(downloaded / "outputs", ["keras", "h5", "savedmodel", "onnx"])
