"""Building, reusing and pushing job images on the real Docker engine and registry (scripts/engine.sh).

The runner's own wheel is checked without an engine: it installs offline with pip and its agent runs.
Everything else talks to the engine: a job image is built FROM the TensorFlow stand-in, run with the
agent as entrypoint, found again by its content hash without a build, rebuilt when its context changes,
refused with the failing step and the end of its output when a build fails (leaving no containers and
no dangling images), and pushed to the registry on 127.0.0.1:5000 and pulled back unchanged.
Without an engine these tests skip, or fail when env CI is true. Every image they make is removed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.errors import RunnerError
from runner.images import wheel as wheel_module
from runner.images.build import TAG_LABEL, BuiltImage, ensure_image, image_name
from runner.images.engine import BuildError, EngineError, quick_image_id
from runner.images.push import has_registry, push_image
from runner.images.recipe import build_recipe
from runner.images.tarstream import ContextStream
from runner.images.wheel import package_files, runner_version, runner_wheel, source_digest, wheel_bytes
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER
from runner.spec.model import JobManifest
from tests.support.engine.engine import REGISTRY

if TYPE_CHECKING:
    import docker

# docker_client and tensorflow_base_image (the engine started by scripts/engine.sh; skip, or fail in CI).
pytest_plugins = ["tests.support.engine.fixtures"]

TF_BASE = "tensorflow/tensorflow:2.21.0-gpu"
NONCE = secrets.token_hex(3)  # job names (and so image names) of this test session
TEST_IMAGE_LABEL = "runner.dev/test-image"
# Text of the job template's steps, to tell its builds' containers and images from others'.
TEMPLATE_MARKS = ("getent passwd 1000", "/tmp/runner-build", "runner.agent")
HELLO = """\
import os, pathlib, sys
print("hello uid", os.getuid(), "gid", os.getgid(), "cwd", os.getcwd())
print("job", os.environ["RUNNER_JOB"], "run", os.environ["RUNNER_RUN_ID"])
print("to stderr", file=sys.stderr)
pathlib.Path(os.environ["RUNNER_OUTPUTS"], "result.txt").write_text("done\\n")
"""


# --- helpers --------------------------------------------------------------------------------------


def manifest(job: str, base: str, command: list[str] | None = None, **image: Any) -> JobManifest:
    return JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": job},
            "spec": {"image": {"base": base, **image}, "command": command or ["python", "hello.py"]},
        }
    )


def job_name(purpose: str) -> str:
    return f"bt-{NONCE}-{purpose}"


def write_context(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def tiny_wheel(directory: Path, name: str = "bt_tiny", version: str = "1.0", value: str = "42") -> Path:
    """A minimal pure-Python wheel with one module, ``<name>.VALUE``, written with zipfile."""
    dist_info = f"{name}-{version}.dist-info"
    members = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


@dataclass
class Progress:
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def steps(self) -> list[str]:
        """The build's steps in words: ``[16/24] copying the job's files``."""
        return [line for line in self.lines if re.match(r"\[\d+/\d+\] ", line)]


@dataclass
class Engine:
    """The engine, the base image, and everything the tests made, removed at the end."""

    client: docker.DockerClient
    base: str  # this session's own base image: the TensorFlow stand-in with a label of the session
    base_id: str
    cache: Path
    jobs: set[str] = field(default_factory=set)
    references: set[str] = field(default_factory=set)  # every image the tests built or pulled
    helper_images: list[str] = field(default_factory=list)

    def ensure(
        self, job: JobManifest, context: Path, registry: str | None = None
    ) -> tuple[BuiltImage, Progress]:
        self.jobs.add(job.name)
        progress = Progress()
        built = ensure_image(
            job,
            context,
            registry=registry,
            progress=progress,
            client=self.client,
            cache_dir=self.cache,
            log_dir=self.logs,
        )
        self.references.add(built.reference)
        return built, progress

    @property
    def logs(self) -> Path:
        return self.cache / "builds"

    def log_of(self, built: BuiltImage, job: str) -> str:
        return (self.logs / f"{job}-{built.tag}.log").read_text()

    def leftovers(self) -> tuple[set[str], set[str]]:
        """Ids of all containers and of all dangling images."""
        containers = {str(c.id) for c in self.client.containers.list(all=True)}
        dangling = {str(i.id) for i in self.client.images.list(filters={"dangling": True})}
        return containers, dangling

    def ours(self, containers: set[str], images: set[str]) -> tuple[list[str], list[str]]:
        """Of new containers and dangling images, those that come from this session's builds.

        Other processes may use the engine meanwhile (other test sessions, base image builds), so only
        containers of, and images from, descendants of this session's own base image count.
        """
        import docker

        found_containers: list[str] = []
        for container_id in containers:
            with contextlib.suppress(docker.errors.NotFound):
                if self.descends(str(self.client.containers.get(container_id).attrs["Image"])):
                    found_containers.append(container_id)
        return found_containers, [image for image in images if self.descends(image)]

    def descends(self, image_id: str) -> bool:
        """Whether the image is this session's base or was built on it."""
        import docker

        current = image_id
        for _ in range(500):
            if current == self.base_id:
                return True
            try:
                current = str(self.client.images.get(current).attrs.get("Parent") or "")
            except docker.errors.NotFound:
                return False
            if not current:
                return False
        return False

    def run(self, reference: str, job: str, run_id: str, command: list[str] | None = None) -> Ran:
        container = self.client.containers.run(
            reference,
            command=command,
            environment={"RUNNER_STORE": "file:///tmp/store", "RUNNER_JOB": job, "RUNNER_RUN_ID": run_id},
            network_disabled=True,
            detach=True,
        )
        try:
            status = container.wait(timeout=120)
            stdout = container.logs(stdout=True, stderr=False).decode()
            stderr = container.logs(stdout=False, stderr=True).decode()
            store = read_tree(container, f"/tmp/store/{job}/{run_id}")
            config = container.attrs["Config"]
        finally:
            container.remove(force=True)
        return Ran(int(status["StatusCode"]), stdout, stderr, store, config)

    def cleanup(self) -> None:
        import docker

        for reference in sorted(self.references):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(reference, force=True)
        for job in sorted(self.jobs):
            for image in self.client.images.list(filters={"label": f"{JOB_LABEL}={job}"}):
                if self.descends(str(image.id)):  # not another session's image of the same job
                    with contextlib.suppress(docker.errors.APIError):
                        self.client.images.remove(str(image.id), force=True)
        for tag in self.helper_images:
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(tag, force=True)


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str
    store: dict[str, bytes]  # what the agent collected, by path under the run's prefix
    config: dict[str, Any]


def read_tree(container: Any, path: str) -> dict[str, bytes]:
    """Files under path in a (stopped) container, by their path below it."""
    import docker

    try:
        chunks, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return {}
    data = b"".join(chunks)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                found[member.name.split("/", 1)[1] if "/" in member.name else member.name] = extracted.read()
    return found


@pytest.fixture(scope="module")
def engine(
    request: pytest.FixtureRequest,
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Engine]:
    import docker

    try:
        docker_client.images.get(TF_BASE)
        stand_in = TF_BASE
    except docker.errors.ImageNotFound:
        stand_in = request.getfixturevalue("tensorflow_base_image")
    # A base of this session's own (a label on the stand-in: no new layer), so that what its builds
    # leave behind can be told from what other processes on the engine do meanwhile.
    base = f"runner-test/build-base:{NONCE}"
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {stand_in}\nLABEL runner.dev/test-session={NONCE}\n".encode()),
        tag=base,
        rm=True,
        forcerm=True,
        labels={TEST_IMAGE_LABEL: "build-base"},
    )
    state = Engine(docker_client, base, str(image.id), tmp_path_factory.mktemp("wheels"))
    state.helper_images.append(base)
    try:
        yield state
    finally:
        state.cleanup()


@pytest.fixture(scope="module")
def no_pip_base(engine: Engine) -> str:
    """The TensorFlow stand-in without pip: a base on which the runner's install step must fail."""
    tag = f"runner-test/no-pip:{NONCE}"
    dockerfile = (
        f"FROM {engine.base}\n"
        "RUN set -e; for attempt in 1 2 3; do "
        "found=$(python -c 'import os, pip; print(os.path.dirname(pip.__file__))' 2>/dev/null) || break; "
        'rm -rf "$found"; done; ! python -c "import pip" 2>/dev/null\n'
    )
    engine.helper_images.insert(0, tag)
    engine.client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        rm=True,
        forcerm=True,
        labels={TEST_IMAGE_LABEL: "no-pip"},
    )
    return tag


# --- the runner's wheel (no engine) ------------------------------------------------------------------


def test_version_names_the_release_and_the_code() -> None:
    version = runner_version()
    assert re.fullmatch(r"0\.1\.0\+g[0-9a-f]{10}", version), version
    assert version == runner_version()


def test_source_hash_changes_with_any_package_file(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runner"
    shutil.copytree(wheel_module.package_root(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = source_digest(copy)
    assert original == source_digest(wheel_module.package_root())
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"byte code does not count")
    assert source_digest(copy) == original
    (copy / "agent" / "main.py").write_text((copy / "agent" / "main.py").read_text() + "\n# edited\n")
    assert source_digest(copy) != original
    template = copy / "images" / "templates" / "job.Dockerfile"
    (copy / "agent" / "main.py").write_bytes((wheel_module.package_root() / "agent" / "main.py").read_bytes())
    assert source_digest(copy) == original
    template.write_text(template.read_text() + "# edited\n")
    assert source_digest(copy) != original, "package data counts too"


def test_wheel_is_reproducible_and_its_record_checks_out() -> None:
    version = runner_version()
    data = wheel_bytes(version)
    assert data == wheel_bytes(version)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        dist_info = f"runner-{version}.dist-info"
        assert f"{dist_info}/METADATA" in names and f"{dist_info}/WHEEL" in names
        assert {name for name in names if name.startswith("runner/")} == set(package_files())
        assert "runner/images/templates/job.Dockerfile" in names and "runner/py.typed" in names
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        assert f"Version: {version}\n" in metadata and "Requires-Dist" not in metadata
        record = archive.read(f"{dist_info}/RECORD").decode().splitlines()
        assert f"{dist_info}/RECORD,," in record
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("/RECORD"):
                continue
            content = archive.read(path)
            assert digest == record_hash(content) and int(size) == len(content), path
        assert set(names) == {line.rsplit(",", 2)[0] for line in record}


def test_wheel_is_cached_per_version(tmp_path: Path) -> None:
    first = runner_wheel(tmp_path)
    assert first.name == f"runner-{runner_version()}-py3-none-any.whl"
    stamp = first.stat().st_mtime_ns
    assert runner_wheel(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "no temporary files left"


def test_wheel_installs_offline_and_the_agent_runs_from_it(tmp_path: Path) -> None:
    wheel = runner_wheel(tmp_path / "cache")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    # -S: without site-packages the editable checkout of runner cannot be imported, only the wheel's.
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import runner; print(runner.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.strip() == str(target / "runner" / "__init__.py")
    helped = subprocess.run(
        [sys.executable, "-S", "-m", "runner.agent", "--help"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert helped.returncode == 0, helped.stderr
    assert "usage: python -m runner.agent -- COMMAND" in helped.stdout and "RUNNER_STORE" in helped.stdout


# --- names and the context stream (no engine) ---------------------------------------------------------


def test_image_names() -> None:
    assert image_name("mnist", None) == "runner/mnist"
    assert image_name("mnist", "127.0.0.1:5000") == "127.0.0.1:5000/runner/mnist"
    assert image_name("mnist", "registry.example.com/team/") == "registry.example.com/team/runner/mnist"
    assert has_registry("127.0.0.1:5000/runner/mnist") and has_registry("localhost/runner/x")
    assert has_registry("registry.example.com/team/runner/mnist")
    assert not has_registry("runner/mnist") and not has_registry("mnist")


def test_context_stream_is_a_tar_of_the_recipe_with_times_and_owners_normalised(tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        {
            "train.py": "print(1)\n",
            "run.sh": "#!/bin/sh\n",
            "data/a.txt": "a" * 1000,
            ".dockerignore": "*.log\n",
        },
    )
    (context / "run.sh").chmod(0o750)
    (context / "skip.log").write_text("left out")
    (context / "link").symlink_to("data/a.txt")
    wheel = tiny_wheel(tmp_path / "w")
    recipe = build_recipe(manifest("demo", TF_BASE), context, runner_version="0.1.0")
    stream = ContextStream(recipe, context, wheel)
    data = b"".join(stream)
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {member.name: member for member in archive.getmembers()}
        assert set(members) == {
            "Dockerfile",
            ".runner",
            recipe.runner_wheel,
            "job",
            "job/.dockerignore",
            "job/train.py",
            "job/run.sh",
            "job/data/a.txt",
            "job/link",
        }
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and not m.uname for m in members.values())
        assert members["job/run.sh"].mode == 0o755 and members["job/train.py"].mode == 0o644
        assert members["job/link"].issym() and members["job/link"].linkname == "data/a.txt"
        assert members["job"].isdir()
        assert archive.extractfile("Dockerfile").read().decode() == recipe.dockerfile  # type: ignore[union-attr]
        assert archive.extractfile("job/data/a.txt").read() == b"a" * 1000  # type: ignore[union-attr]
        assert archive.extractfile(recipe.runner_wheel).read() == wheel.read_bytes()  # type: ignore[union-attr]


def test_context_stream_reports_a_file_that_vanished(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", {"train.py": "print(1)\n", "gone.py": ""})
    recipe = build_recipe(manifest("demo", TF_BASE), context, runner_version="0.1.0")
    (context / "gone.py").unlink()
    stream = ContextStream(recipe, context, tiny_wheel(tmp_path / "w"))
    with pytest.raises(Exception, match=r"gone\.py"):
        b"".join(stream)
    assert isinstance(stream.error, RunnerError) and "gone.py" in stream.error.message


def test_no_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO})
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(EngineError) as caught:
        ensure_image(manifest("demo", TF_BASE), context, registry=None, progress=print, cache_dir=tmp_path)
    assert f"no Docker engine answers at unix://{tmp_path}/no-engine.sock" in caught.value.message
    assert caught.value.hint is not None and "scripts/engine.sh start" in caught.value.hint


# --- building and running --------------------------------------------------------------------------------


def test_build_run_reuse_and_rebuild(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = manifest(job_name("hello"), engine.base)
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO, "nonce.txt": NONCE})
    built, progress = engine.ensure(job, context)
    assert built.built and built.reference == f"runner/{job.name}:{built.tag}"
    assert built.image_id.startswith("sha256:")
    # Plain steps, not the builder's log; the log goes to a file.
    assert any(step.endswith("] copying the job's files") for step in progress.steps), progress.lines
    assert any("installing the agent's packages into /opt/runner" in step for step in progress.steps)
    assert not any(line.startswith(("Step ", " ---> ", "Successfully")) for line in progress.lines)
    assert "Successfully installed runner-" in engine.log_of(built, job.name)
    assert any(
        "Successfully installed" in line and "boto3" in line
        for line in engine.log_of(built, job.name).splitlines()
    )
    image = engine.client.images.get(built.reference)
    assert image.labels[MANAGED_BY] == MANAGER
    assert image.labels[JOB_LABEL] == job.name and image.labels[TAG_LABEL] == built.tag

    ran = engine.run(built.reference, job.name, "hello-r1")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "hello uid 1000 gid 1000 cwd /job" in ran.stdout
    assert f"job {job.name} run hello-r1" in ran.stdout
    assert "to stderr" in ran.stdout  # the agent tees both streams into one log
    assert "run hello-r1 succeeded (exit code 0); collected" in ran.stderr
    assert ran.config["User"] == "1000:1000"
    assert ran.config["Entrypoint"] == ["/opt/runner/bin/python", "-I", "-m", "runner.agent", "--"]
    assert ran.store["outputs/result.txt"] == b"done\n"
    assert "MANIFEST.json" in ran.store and b"hello uid 1000" in ran.store["logs/attempt-1.log"]
    assert json.loads(ran.store["run.json"])["state"] == "succeeded"

    # Found again by its content hash: no build at all.
    calls: list[Any] = []
    real_build = engine.client.api.build

    def counted_build(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(engine.client.api, "build", counted_build)
    again, progress = engine.ensure(job, context)
    assert again.reference == built.reference and not again.built and again.image_id == built.image_id
    assert calls == [] and progress.lines == []
    # Without a client given, the check asks the engine's socket directly (no docker SDK).
    assert quick_image_id(built.reference) == built.image_id
    assert quick_image_id(f"{built.repository}:no-such-tag") is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert quick_image_id(built.reference) is None, "not a unix socket: the SDK's way"
    monkeypatch.delenv("DOCKER_HOST")
    assert engine.client.images.get(built.reference).attrs["Created"] == image.attrs["Created"]

    # A changed file is a new tag and a new build, from the layer cache up to the job's files: only
    # the last layer is built again, and nothing is downloaded.
    (context / "hello.py").write_text(HELLO + "print('edited')\n")
    edited, progress = engine.ensure(job, context)
    assert edited.built and edited.tag != built.tag and len(calls) == 1
    assert not any("downloading" in line or "resolving" in line for line in progress.lines)
    said = progress.steps[1:]  # after FROM
    assert said[-1].endswith("] copying the job's files"), said
    assert all(step.endswith(", from the cache") for step in said[:-1]), said
    assert "edited" in engine.run(edited.reference, job.name, "hello-r2").stdout


def test_the_agent_has_its_own_environment_with_boto3(engine: Engine, tmp_path: Path) -> None:
    probe = (
        "import importlib.util as u, sys; "
        "print('job python', sys.prefix, 'boto3', u.find_spec('boto3') is not None, "
        "'runner', u.find_spec('runner') is not None)"
    )
    job = manifest(job_name("venv"), engine.base, ["python", "-c", probe])
    context = write_context(tmp_path / "ctx", {"nonce.txt": NONCE})
    built, _ = engine.ensure(job, context)
    ran = engine.run(built.reference, job.name, "venv-r1")
    assert ran.code == 0, ran.stdout + ran.stderr
    # The runner package alone (runner.metrics for training callbacks), never the agent's packages.
    assert "boto3 False runner True" in ran.stdout, ran.stdout
    agent = engine.client.containers.run(
        built.reference,
        entrypoint=["/opt/runner/bin/python", "-I", "-c"],
        command=["import boto3, runner.store.s3, sys; print(sys.prefix, boto3.__version__)"],
        network_disabled=True,
        remove=True,
    )
    assert agent.decode().startswith("/opt/runner "), agent


def test_requirements_are_resolved_on_the_host_and_installed_offline(engine: Engine, tmp_path: Path) -> None:
    # jmespath is not in the base: pip inside the build (which has no network) cannot have fetched it.
    job = manifest(
        job_name("hostwheels"),
        engine.base,
        ["python", "-c", "import jmespath; print('jmespath', jmespath.__version__)"],
        requirements=["jmespath==1.0.1"],
    )
    context = write_context(tmp_path / "ctx", {"nonce.txt": NONCE})
    built, progress = engine.ensure(job, context)
    assert any(
        "resolving the job's requirements on this machine for Python 3.11" in line for line in progress.lines
    )
    assert any("copying the job's wheels (1 wheel, " in step for step in progress.steps), progress.steps
    ran = engine.run(built.reference, job.name, "hostwheels-r1")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "jmespath 1.0.1" in ran.stdout
    # Cached by requirement set and target: another job with the same set downloads nothing.
    other = manifest(job_name("hostwheels2"), engine.base, ["true"], requirements=["jmespath==1.0.1"])
    again, progress = engine.ensure(other, context)
    assert again.built and not any("resolving" in line for line in progress.lines)


def test_air_gapped_build_from_a_wheelhouse(engine: Engine, tmp_path: Path) -> None:
    job = manifest(
        job_name("wheels"),
        engine.base,
        ["python", "-c", "import bt_tiny, sys; print('value', bt_tiny.VALUE, sys.prefix)"],
        requirements="requirements.txt",
    )
    context = write_context(tmp_path / "ctx", {"requirements.txt": "bt_tiny==1.0\n", "nonce.txt": NONCE})
    tiny_wheel(context / "wheelhouse", value=NONCE)
    built, progress = engine.ensure(job, context)
    assert built.built
    assert any("installing the job's requirements (offline)" in step for step in progress.steps)
    assert not any("resolving the job's requirements" in line for line in progress.lines), "its own wins"
    ran = engine.run(built.reference, job.name, "wheels-r1")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert f"value {NONCE}" in ran.stdout


# --- failures ------------------------------------------------------------------------------------------


def expect_failure(engine: Engine, job: JobManifest, context: Path) -> tuple[BuildError, Progress]:
    containers, dangling = engine.leftovers()
    progress = Progress()
    engine.jobs.add(job.name)
    with pytest.raises(BuildError) as caught:
        ensure_image(
            job,
            context,
            registry=None,
            progress=progress,
            client=engine.client,
            cache_dir=engine.cache,
            log_dir=engine.logs,
        )
    after_containers, after_dangling = engine.leftovers()
    containers_left, images_left = engine.ours(after_containers - containers, after_dangling - dangling)
    assert containers_left == [], "the failed build left containers"
    assert images_left == [], "the failed build left dangling images"
    assert engine.client.images.list(filters={"label": f"{JOB_LABEL}={job.name}"}) == []
    return caught.value, progress


def test_a_requirement_missing_from_the_wheelhouse(engine: Engine, tmp_path: Path) -> None:
    job = manifest(job_name("missing"), engine.base, requirements=["bt_tiny==1.0", "bt-not-there==2.0"])
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO, "nonce.txt": NONCE})
    tiny_wheel(context / "wheelhouse")
    error, progress = expect_failure(engine, job, context)
    assert error.step is not None and error.step.startswith("Step ")
    assert (
        "--no-index --find-links /tmp/runner-build/wheelhouse -r /tmp/runner-build/requirements.txt"
        in " ".join(error.step.split())
    )
    assert re.search(r"failed at Step \d+/\d+ : RUN python -m pip install --no-index", error.message)
    assert "it exited with code 1" in error.message
    assert "No matching distribution found for bt-not-there==2.0" in error.message
    assert any("bt-not-there" in line for line in error.output) and len(error.output) <= 15
    assert error.hint is not None and "wheelhouse/ has no wheel" in error.hint
    # The builder's raw output is in the log file the error names, not in progress.
    log = re.search(r"full build log: (\S+)", error.message)
    assert log is not None and "No matching distribution" in Path(log.group(1)).read_text()
    assert not any("No matching distribution" in line for line in progress.lines)


def test_a_broken_requirements_file(engine: Engine, tmp_path: Path) -> None:
    job = manifest(job_name("broken"), engine.base, requirements="requirements.txt")
    context = write_context(
        tmp_path / "ctx", {"requirements.txt": "bt_tiny==1.0 extra words\n", "nonce.txt": NONCE}
    )
    tiny_wheel(context / "wheelhouse")
    error, _ = expect_failure(engine, job, context)
    assert "RUN python -m pip install" in (error.step or "")
    assert (
        "Invalid requirement: 'bt_tiny==1.0 extra words'" in error.message
        and "it exited with code 1" in error.message
    )
    assert error.hint is not None and "requirements" in error.hint


def test_a_base_image_that_is_not_here(engine: Engine, tmp_path: Path) -> None:
    base = f"runner-test/not-here-{NONCE}:1"
    job = manifest(job_name("nobase"), base)
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO})
    error, _ = expect_failure(engine, job, context)
    assert error.message.startswith(f"base image {base} is not on this machine")
    assert error.hint is not None and f"docker pull {base}" in error.hint and "docker load" in error.hint


def test_a_failing_run_step_after_cached_steps(engine: Engine, no_pip_base: str, tmp_path: Path) -> None:
    # The agent needs no pip in the base (pip's own wheel installs it): a job without requirements builds.
    bare = manifest(job_name("nopipok"), no_pip_base)
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO, "nonce.txt": NONCE})
    built, _ = engine.ensure(bare, context)
    assert engine.run(built.reference, bare.name, "nopip-r1").code == 0
    # The job's own requirements need the base's pip.
    job = manifest(job_name("nopip"), no_pip_base, requirements=["bt_tiny==1.0"])
    tiny_wheel(context / "wheelhouse")
    error, progress = expect_failure(engine, job, context)
    assert error.step is not None and "RUN python -m pip install --no-index" in error.step
    assert "No module named pip" in error.message and "it exited with code 1" in error.message
    assert error.hint is not None and "has no pip" in error.hint
    assert len(progress.steps) >= 5, "the steps before it ran (or came from the cache)"
    assert sum(step.endswith(", from the cache") for step in progress.steps) >= 3, progress.steps


# --- pushing ---------------------------------------------------------------------------------------------


def registry_delete(reference: str, digest: str) -> None:
    registry, _, rest = reference.partition("/")
    repository = rest.rsplit(":", 1)[0]
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{digest}", method="DELETE")
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=10).close()


def test_push_and_pull_back(engine: Engine, tmp_path: Path) -> None:
    # One repository for every session: the registry keeps the base's layers (gigabytes) from the first
    # push, so later pushes send only the job's own.
    job = manifest("bt-push", engine.base)
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO, "nonce.txt": NONCE})
    built, _ = engine.ensure(job, context, registry=REGISTRY)
    assert built.built and built.reference == f"{REGISTRY}/runner/{job.name}:{built.tag}"
    progress = Progress()
    digest = push_image(built, progress=progress, client=engine.client)
    try:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        assert any("Pushed" in line or "already exists" in line for line in progress.lines)
        engine.client.images.remove(built.reference)
        with pytest.raises(Exception, match=r"No such image|not found"):
            engine.client.images.get(built.reference)
        pulled = engine.client.images.pull(built.repository, tag=built.tag)
        assert pulled.id == built.image_id
        assert f"{built.repository}@{digest}" in pulled.attrs["RepoDigests"]
        again, _ = engine.ensure(job, context, registry=REGISTRY)
        assert not again.built and again.image_id == built.image_id
        quiet = Progress()
        assert push_image(again, progress=quiet, client=engine.client) == digest
        assert quiet.lines == [
            f"{built.reference} is already in {REGISTRY} ({digest[:19]}...): nothing to push"
        ]
    finally:
        registry_delete(built.reference, digest)
    # Gone from the registry (garbage-collected, a fresh registry): the check sees it and pushes again.
    pushed_again = Progress()
    try:
        assert push_image(again, progress=pushed_again, client=engine.client) == digest
        assert not any("nothing to push" in line for line in pushed_again.lines)
        assert any("Pushed" in line or "already exists" in line for line in pushed_again.lines)
    finally:
        registry_delete(built.reference, digest)


def test_push_errors(engine: Engine, tmp_path: Path) -> None:
    local = BuiltImage("runner/x:0123", "0123", built=True, seconds=0.0)
    with pytest.raises(BuildError, match="has no registry"):
        push_image(local, progress=Progress(), client=engine.client)
    gone = BuiltImage(f"{REGISTRY}/runner/bt-gone-{NONCE}:0123", "0123", built=True, seconds=0.0)
    with pytest.raises(BuildError, match="does not exist locally") as caught:
        push_image(gone, progress=Progress(), client=engine.client)
    assert caught.value.hint is not None and "build the image first" in caught.value.hint
    job = manifest(job_name("noreg"), engine.base)
    context = write_context(tmp_path / "ctx", {"hello.py": HELLO, "nonce.txt": NONCE})
    built, _ = engine.ensure(job, context, registry="127.0.0.1:5999")
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        push_image(built, progress=Progress(), client=engine.client)
    assert time.monotonic() - started < 60
    assert caught.value.message.startswith(f"pushing {built.reference} to 127.0.0.1:5999 failed: ")
    assert "connection refused" in caught.value.message
    assert caught.value.hint is not None and "no registry answers at 127.0.0.1:5999" in caught.value.hint
