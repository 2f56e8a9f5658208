"""An example job on the docker backend, no network inside its build: requirements resolved on the host.

`runner submit --backend docker jobs/mnist/job.yaml`, as a new user runs it (no wheelhouse/ in jobs/): the
image build has no network at all (network mode none), so pip inside it cannot reach an index. Before the
requirements were resolved on the host, this failed at the build's `pip install` (here containers do not
trust the proxy's CA; on air-gapped fleets there is no index at all). The run trains, saves every model
format, and is collected; the build said its steps in words and wrote the builder's log to a file.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, store_dir, submitted_run
from tests.jobs.formats import check_artifacts

pytest_plugins = ["tests.support.engine.fixtures"]
pytestmark = [pytest.mark.docker, pytest.mark.tensorflow, pytest.mark.usefixtures("no_leftover_containers")]

Runner = Callable[..., Result]


@pytest.fixture
def built_images(docker_client: Any) -> Iterator[list[str]]:
    """Image references the test built, removed afterwards."""
    references: list[str] = []
    yield references
    for reference in references:
        # already gone, or another session's build of the same content uses it
        with contextlib.suppress(Exception):
            docker_client.images.remove(reference, force=True)


def test_mnist_on_docker_without_a_wheelhouse_builds_offline_and_trains(
    runner: Runner,
    tmp_path: Path,
    home: Path,
    tensorflow_base_image: str,
    built_images: list[str],
) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__", "wheelhouse"))
    (jobs / "mnist" / "nonce.txt").write_text(tmp_path.name)  # this test's own image tag
    assert not (jobs / "wheelhouse").exists()
    manifest = jobs / "mnist" / "job.yaml"

    result = runner("submit", "--backend", "docker", str(manifest), timeout=1500)
    built = re.search(r"image (\S+) built in ", result.stderr)
    if built:
        built_images.append(built.group(1))
    assert result.code == 0, result.output[-5000:]
    stderr = result.stderr
    assert "resolving the job's requirements on this machine for Python 3.11" in stderr
    assert re.search(r"downloading scikit_learn-\S+\.whl \(", stderr), "downloads are said with sizes"
    assert re.search(r"\] copying the job's wheels \(\d+ wheels, [\d.]+ MiB\)", stderr)
    assert "] installing the job's requirements (offline)" in stderr
    assert not re.search(r"^Step \d+/\d+ :", stderr, re.MULTILINE), "plain steps, not the builder's log"
    log = re.search(r"\(build log: (\S+)\)", stderr)
    assert log is not None and "Successfully installed" in Path(log.group(1)).read_text()
    wheelhouses = list((home / "cache" / "wheelhouse").iterdir())
    assert len(wheelhouses) == 2, "the agent's packages and the job's, cached under RUNNER_HOME"

    run = submitted_run(result)
    check_artifacts(store_dir(home, "mnist", run) / "outputs", ["keras", "h5", "savedmodel", "onnx"])
