"""An s3:// input on the docker backend: fetched here (cached), mounted read-only at its path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, submitted_run

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_client", "no_leftover_containers")]

Runner = Callable[..., Result]


@pytest.mark.usefixtures("home", "aws_env")
def test_a_container_reads_its_s3_input_at_its_path(
    runner: Runner, job: Callable[..., Path], python_base_image: str, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="sets/cells/a.txt", Body=b"alpha\n")
    s3.put_object(Bucket=bucket, Key="sets/cells/sub/b.txt", Body=b"beta\n")
    path = job(
        "boxedin",
        image={"base": python_base_image},
        command=[
            "sh",
            "-c",
            'cat /data/cells/a.txt /data/cells/sub/b.txt; echo "at $RUNNER_INPUT_CELLS"; '
            "touch /data/cells/new 2>/dev/null || echo read-only",
        ],
        inputs=[{"name": "cells", "source": f"s3://{bucket}/sets/cells/", "path": "/data/cells"}],
    )
    (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)
    result = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    assert "input 'cells': fetching 2 file(s)" in result.output
    run = submitted_run(result)
    for line in ("alpha", "beta", "at /data/cells", "read-only"):
        assert f"[{run}] {line}\n" in result.stdout, result.stdout
