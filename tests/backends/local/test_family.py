"""Local backends by name, and how a supervisor starts its attempts without loading what it does not need."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.backends import BACKENDS, get_backend
from runner.backends.kubernetes.backend import KubernetesBackend
from runner.backends.local.docker import DockerBackend
from runner.backends.local.family import LOCAL_BACKENDS, local_backend
from runner.backends.local.process import ProcessBackend
from runner.errors import BackendError


def test_each_name_is_one_backend_everywhere() -> None:
    assert isinstance(local_backend("process"), ProcessBackend)
    assert isinstance(local_backend("docker"), DockerBackend)
    assert isinstance(get_backend("kubernetes"), KubernetesBackend)
    for name in BACKENDS:
        assert get_backend(name).name == name
    for name in LOCAL_BACKENDS:
        assert type(get_backend(name)) is type(local_backend(name))


def test_a_cluster_run_has_no_local_backend() -> None:
    with pytest.raises(BackendError, match="'kubernetes' is not a backend of this machine"):
        local_backend("kubernetes")


@pytest.mark.parametrize(
    ("backend", "loaded"),
    [
        ("process", []),
        # the docker backend's module reads the labels (runner.spec.labels), not pydantic's models (they
        # load lazily); the docker SDK waits for an attempt
        ("docker", ["runner.spec"]),
    ],
)
def test_a_supervisor_loads_only_its_own_backend(backend: str, loaded: list[str]) -> None:
    probe = (
        "import sys\n"
        "import runner.backends.local.supervisor\n"
        "from runner.backends.local.family import local_backend\n"
        f"local_backend({backend!r})\n"
        "names = ('pydantic', 'runner.spec', 'docker', 'kubernetes', 'runner.backends.kubernetes',"
        " 'runner.service')\n"
        "print([n for n in names if n in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(loaded)
