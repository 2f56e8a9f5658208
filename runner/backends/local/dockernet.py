"""The network of a multi-worker run under the docker backend: made before its workers' containers,
removed after them.

Its shape (a user-defined bridge named after the run, with the run's labels) is rendered by
runner.render.docker.render_network; here it is only sent, and found again by the run's label, so that
whoever cleans up a run (its attempt's end, a failed start, a dead supervisor's collector) removes it.
"""

from __future__ import annotations

import contextlib

from runner.errors import BackendError
from runner.records import RunRecord
from runner.render.docker import render_network
from runner.spec.labels import RUN_LABEL

_CLEANUP_ENGINE_TIMEOUT = 30  # seconds per request while a run's networks are looked for


def create_network(record: RunRecord) -> None:
    """The run's network as runner.render.docker renders it; one an earlier attempt left is replaced."""
    import docker

    from runner.images.engine import connect_engine

    remove_run_networks(record.id)
    try:
        connect_engine(60).networks.create(**render_network(record).create_arguments())
    except docker.errors.DockerException as error:
        raise BackendError(f"cannot create the network of run {record.id}: {error}") from error


def remove_run_networks(run_id: str) -> int:
    """Remove the run's networks (labelled with it); how many there were. Their containers must be
    removed first, or the engine refuses (and the network is left for the next clean-up)."""
    import docker

    from runner.images.engine import connect_engine

    try:
        client = connect_engine(_CLEANUP_ENGINE_TIMEOUT)
        found = client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"})
    except (BackendError, docker.errors.DockerException):
        return 0
    for network in found:
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
    return len(found)
