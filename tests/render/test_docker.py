"""The container of a docker-backend attempt (runner.render.docker): golden files for the example jobs,
the engine request they make, and a backend that only sends what was rendered.

Golden files live in tests/render/golden_docker/ (one per case: the keyword arguments of the Docker
SDK's containers.run, as YAML). When a change is intended, rewrite them with
``RUNNER_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/render/test_docker.py`` and review the
diff. (tests/render/golden/ holds exactly the Kubernetes renderings, and a test keeps it so.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker.models.containers import _create_container_args  # type: ignore[attr-defined]  # private API
from docker.types import DeviceRequest

from runner.backends.local.attempts import LocalLaunch
from runner.backends.local.docker import DockerBackend
from runner.records import RunRecord, RunState
from runner.render.docker import (
    DEFAULT_PIDS_LIMIT,
    ContainerConfig,
    render_container,
    render_network,
    run_worker_addresses,
)
from runner.service.plan import plan_run
from runner.spec import load_manifest
from runner.workers import WorkerPlace
from tests.support import golden

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden_docker"
IMAGE = "127.0.0.1:5000/runner/{name}:3f2a9c1d0e4b5a69"
API_VERSION = "1.45"


@dataclass(frozen=True)
class Case:
    manifest: Path
    run_id: str
    attempt: int = 1
    gpus: tuple[int, ...] = ()
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)  # absolute host paths
    grace: float = 10.0


CASES = {
    "mnist": Case(REPO / "jobs/mnist/job.yaml", "mnist-k3x9q2"),
    # a retry, with its input directory mounted read-only
    "malaria": Case(
        REPO / "jobs/malaria/job.yaml", "malaria-q0w9e8", attempt=2, inputs={"cells": "/srv/data/cells"}
    ),
    # two of the host's GPUs, every resource limit, two inputs, a short grace
    "gpu": Case(
        HERE / "manifests/gpu.yaml",
        "resnet-a1b2c3",
        gpus=(0, 3),
        inputs={"images": "/srv/imagenet/train", "labels-v2": "/srv/labels.csv"},
        grace=2.5,
    ),
}


def outputs_dir(run_id: str) -> str:
    return f"/home/user/.runner/runs/{run_id}/outputs"


def launch_and_record(case: Case) -> tuple[LocalLaunch, RunRecord]:
    """What the docker backend records for the case's run: its launch details and its run record."""
    loaded = load_manifest(case.manifest)
    plan = plan_run(loaded, case.inputs, run_id=case.run_id)
    plan = replace(plan, image=IMAGE.format(name=plan.manifest.name))
    launch = DockerBackend().launch_details(plan)
    record = RunRecord(
        id=plan.run_id,
        job=plan.manifest.name,
        backend="docker",
        state=RunState.RUNNING,
        created=0.0,
        workdir=str(Path(outputs_dir(plan.run_id)).parent),
        store_url="file:///home/user/.runner/store",
        manifest=plan.manifest_text,
        launch=launch.to_data(),
        labels=plan.labels,
    )
    return launch, record


def render_case(name: str) -> ContainerConfig:
    case = CASES[name]
    launch, record = launch_and_record(case)
    return render_container(
        launch,
        record,
        attempt=case.attempt,
        gpus=list(case.gpus),
        outputs_dir=outputs_dir(case.run_id),
        grace=case.grace,
    )


def engine_request(arguments: dict[str, Any]) -> dict[str, Any]:
    """What the SDK's containers.run(detach=True, **arguments) asks the engine to create."""
    created: dict[str, Any] = _create_container_args(
        {"command": None, "detach": True, "version": API_VERSION, **arguments}
    )
    return created


def sent_before_the_render(launch: LocalLaunch, record: RunRecord, case: Case) -> dict[str, Any]:
    """The keyword arguments start_container passed to containers.run before the render existed."""
    volumes = {outputs_dir(case.run_id): {"bind": launch.outputs_path, "mode": "rw"}}
    volumes.update({host: {"bind": inside, "mode": "ro"} for host, inside in launch.mounts.items()})
    gpus = list(case.gpus)
    requests = [DeviceRequest(device_ids=[str(i) for i in gpus], capabilities=[["gpu"]])] if gpus else None
    return {
        "image": launch.image,
        "name": f"{record.id}-{case.attempt}",
        "environment": {
            **launch.env,
            "RUNNER_STORE": "none",
            "RUNNER_JOB": record.job,
            "RUNNER_RUN_ID": record.id,
            "RUNNER_ATTEMPT": str(case.attempt),
            "RUNNER_OUTPUTS": launch.outputs_path,
            "RUNNER_BACKEND": "docker",
            "RUNNER_GRACE": f"{max(case.grace - 1, 0.5):g}",
        },
        "labels": {**record.labels, "runner.dev/attempt": str(case.attempt)},
        "volumes": volumes,
        "nano_cpus": launch.cpu_millis * 1_000_000 if launch.cpu_millis else None,
        "mem_limit": launch.memory_bytes,
        # added since: a pids limit, the manifest's or DEFAULT_PIDS_LIMIT (Docker sets none)
        "pids_limit": DEFAULT_PIDS_LIMIT if launch.pids_limit is None else launch.pids_limit,
        "device_requests": requests,
        # added since: the `local` log driver, which keeps bytes that are not UTF-8 (issue 14, 9)
        "log_config": {"type": "local", "config": {}},
    }


# ---------------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    arguments = render_case(name).run_arguments()
    golden.check_golden(GOLDEN, f"{name}.yaml", yaml.safe_dump(arguments, sort_keys=False))
    assert yaml.safe_load((GOLDEN / f"{name}.yaml").read_text()) == arguments


def test_no_golden_file_is_left_over() -> None:
    expected = {f"{name}.yaml" for name in CASES} | {f"{name}.yaml" for name in WORKER_CASES}
    assert {path.name for path in GOLDEN.iterdir()} == expected


# two workers, one H100 each (tests/render/manifests/multiworker.yaml): worker 0 and worker 1's containers
WORKER_CASES = {"multiworker-0": 0, "multiworker-1": 1}
MULTIWORKER = Case(HERE / "manifests/multiworker.yaml", "mnist-multiworker-z9y8x7", gpus=(2,))


def render_worker(index: int) -> ContainerConfig:
    launch, record = launch_and_record(MULTIWORKER)
    place = WorkerPlace(index, run_worker_addresses(launch.workers))
    outputs = outputs_dir(MULTIWORKER.run_id)
    if index:  # the worker's own area of the work directory
        outputs = f"/home/user/.runner/runs/{MULTIWORKER.run_id}/workers/{index}/outputs"
    return render_container(
        launch, record, attempt=1, gpus=[2 + index], outputs_dir=outputs, grace=10.0, worker=place
    )


@pytest.mark.parametrize("name", sorted(WORKER_CASES))
def test_golden_workers(name: str) -> None:
    arguments = render_worker(WORKER_CASES[name]).run_arguments()
    golden.check_golden(GOLDEN, f"{name}.yaml", yaml.safe_dump(arguments, sort_keys=False))
    assert yaml.safe_load((GOLDEN / f"{name}.yaml").read_text()) == arguments


def test_a_worker_is_on_the_runs_network_by_its_alias_and_told_every_address() -> None:
    config = render_worker(1)
    assert config.name == "mnist-multiworker-z9y8x7-1-worker-1"
    assert config.labels["runner.dev/worker"] == "1"
    assert config.environment["RUNNER_WORKER_ADDRESSES"] == "worker-0:2222,worker-1:2222"
    assert config.environment["RUNNER_WORKER_INDEX"] == "1"
    assert config.environment["RUNNER_STORE"] == "none"  # the attached supervisor collects every worker
    request = engine_request(config.run_arguments())
    assert request["host_config"]["NetworkMode"] == "mnist-multiworker-z9y8x7"
    endpoints = request["networking_config"]["EndpointsConfig"]
    assert endpoints == {"mnist-multiworker-z9y8x7": {"Aliases": ["worker-1"]}}


def test_the_runs_network_is_a_labelled_bridge_named_after_it() -> None:
    _, record = launch_and_record(MULTIWORKER)
    network = render_network(record).create_arguments()
    assert network == {"name": record.id, "driver": "bridge", "labels": dict(record.labels)}
    assert network["labels"]["app.kubernetes.io/managed-by"] == "runner"
    assert network["labels"]["runner.dev/run"] == record.id


def test_a_single_worker_container_stays_on_the_default_bridge() -> None:
    arguments = render_case("mnist").run_arguments()
    assert "network" not in arguments and "networking_config" not in arguments
    assert "RUNNER_WORKER_ADDRESSES" not in arguments["environment"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_engine_gets_the_request_start_container_sent_before(name: str) -> None:
    case = CASES[name]
    launch, record = launch_and_record(case)
    rendered = render_case(name).run_arguments()
    assert engine_request(rendered) == engine_request(sent_before_the_render(launch, record, case))


# ------------------------------------------------------------------------------------ the container


def test_the_agents_settings_and_a_shorter_grace() -> None:
    config = render_case("gpu")
    env = config.environment
    assert env["RUNNER_STORE"] == "none"  # the attached supervisor collects
    assert (env["RUNNER_JOB"], env["RUNNER_RUN_ID"], env["RUNNER_ATTEMPT"]) == (
        "resnet",
        "resnet-a1b2c3",
        "1",
    )
    assert env["RUNNER_OUTPUTS"] == "/models/"
    assert env["RUNNER_BACKEND"] == "docker"
    assert env["RUNNER_GRACE"] == "1.5"
    assert env["RUNNER_INPUT_IMAGES"] == "/data/images"
    assert list(env)[:3] == ["TF_CPP_MIN_LOG_LEVEL", "TF_FORCE_GPU_ALLOW_GROWTH", "GREETING"]


def test_outputs_read_write_inputs_read_only_gpus_by_index() -> None:
    arguments = render_case("gpu").run_arguments()
    assert arguments["volumes"] == {
        outputs_dir("resnet-a1b2c3"): {"bind": "/models/", "mode": "rw"},
        "/srv/imagenet/train": {"bind": "/data/images", "mode": "ro"},
        "/srv/labels.csv": {"bind": "/data/labels", "mode": "ro"},
    }
    assert arguments["device_requests"] == [{"device_ids": ["0", "3"], "capabilities": [["gpu"]]}]
    assert arguments["nano_cpus"] == 8 * 10**9
    assert arguments["mem_limit"] == 64 * 2**30


def test_no_gpus_no_device_request_and_the_attempt_names_the_container() -> None:
    arguments = render_case("malaria").run_arguments()
    assert arguments["device_requests"] is None
    assert arguments["name"] == "malaria-q0w9e8-2"
    assert arguments["labels"]["runner.dev/attempt"] == "2"
    assert arguments["labels"]["runner.dev/run"] == "malaria-q0w9e8"


def test_a_launch_without_an_image_is_refused() -> None:
    launch, record = launch_and_record(CASES["mnist"])
    with pytest.raises(ValueError, match="no image"):
        render_container(replace(launch, image=None), record, attempt=1, gpus=[], outputs_dir="/o", grace=1)


def test_the_config_is_frozen_and_rendering_is_pure() -> None:
    launch, record = launch_and_record(CASES["gpu"])
    before = (launch.to_data(), dict(record.labels))
    config = render_case("gpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.environment["X"] = "y"  # type: ignore[index]
    arguments = config.run_arguments()
    arguments["environment"]["X"] = "y"
    arguments["volumes"][outputs_dir("resnet-a1b2c3")]["mode"] = "ro"
    assert config.run_arguments() == render_case("gpu").run_arguments()
    assert (launch.to_data(), dict(record.labels)) == before


# ----------------------------------------------------------------------- the backend only sends it


class FakeContainer:
    def logs(self, **_: Any) -> list[bytes]:
        return []


class FakeContainers:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def run(self, **arguments: Any) -> FakeContainer:
        self.calls.append(arguments)
        return FakeContainer()


class FakeImages:
    def get(self, reference: str) -> Any:
        import docker.errors

        raise docker.errors.ImageNotFound(reference)


class FakeEngine:
    def __init__(self) -> None:
        self.containers = FakeContainers()
        self.images = FakeImages()


def test_start_container_sends_the_rendered_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.backends.local import docker as backend

    engine = FakeEngine()
    monkeypatch.setattr(backend, "engine", lambda timeout=60: engine)
    case = CASES["gpu"]
    launch, record = launch_and_record(case)
    record = replace(record, workdir=str(tmp_path / "run"))
    attempt = backend.start_container(launch, record, None, 1, list(case.gpus), grace=case.grace)  # type: ignore[arg-type]
    attempt._copier.join(5)
    expected = render_container(
        launch,
        record,
        attempt=1,
        gpus=list(case.gpus),
        outputs_dir=str(tmp_path / "run" / "outputs"),
        grace=case.grace,
    )
    assert engine.containers.calls == [{"detach": True, **expected.run_arguments()}]
    assert (tmp_path / "run" / "outputs").is_dir() and (tmp_path / "run" / "logs").is_dir()


# ------------------------------------------------------------------------------------- pids limit


def test_every_container_gets_a_pids_limit_the_manifest_may_set() -> None:
    launch, record = launch_and_record(CASES["mnist"])
    assert launch.pids_limit is None
    config = render_container(launch, record, attempt=1, gpus=[], outputs_dir="/o", grace=1)
    assert config.run_arguments()["pids_limit"] == DEFAULT_PIDS_LIMIT == 4096
    assert engine_request(config.run_arguments())["host_config"]["PidsLimit"] == 4096
    config = render_container(
        replace(launch, pids_limit=256), record, attempt=1, gpus=[], outputs_dir="/o", grace=1
    )
    assert engine_request(config.run_arguments())["host_config"]["PidsLimit"] == 256


def test_the_docker_backend_records_the_manifests_pids(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        "apiVersion: runner/v1\nkind: Job\nmetadata: {name: forks}\n"
        "spec: {command: [sh], resources: {pids: 128}}\n"
    )
    plan = replace(plan_run(load_manifest(manifest), {}, run_id="forks-a1b2c3"), image="i")
    assert DockerBackend().launch_details(plan).pids_limit == 128
