"""What the tests on the real control plane share: small jobs on the python stand-in, detached submits,
waits on runner's view and the API's; kubeconfigs for other identities than the admin's; the runner run
with every request it makes to the API server recorded (which verbs on which resources it uses)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.conftest import REPO, Result, runner_command, status_of, submit_launched
from tests.support.realcluster import ControlPlane, RealKube, wait_until

# The marks of a test that runs jobs on the GPU nodes: a fresh home, the s3:// store, two H100 nodes.
ON_GPU_NODES = [
    pytest.mark.cluster,
    pytest.mark.docker,
    pytest.mark.usefixtures("home", "real_store", "gpu_nodes"),
]
Job = Callable[..., Path]  # the `job` fixture: writes a manifest, returns its path

Runner = Callable[..., Result]
Obj = dict[str, Any]


def small_job(job: Callable[..., Path], image: str, name: str, script: str, **spec: Any) -> Path:
    """A job on the python stand-in running `sh -c script`, on one H100 unless spec says otherwise."""
    spec.setdefault("resources", {"gpu": 1, "gpuType": "H100"})
    return job(name, image={"base": image}, command=["sh", "-c", script], **spec)


def submit_detached(path: Path, *extra: str) -> str:
    result = submit_launched("--backend", "kubernetes", *extra, str(path))
    assert result.code == 0, result.output[-3000:]
    return result.stdout.strip()


def wait_for_run(run: str, *states: str, timeout: float = 120) -> dict[str, Any]:
    """The run's status once it is in one of states; a timeout says the last status read."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        last.update(status_of(run))
        return last if last["state"] in states else None

    try:
        return wait_until(reached, timeout, f"run {run} to be {'/'.join(states)}", pause=0.5)
    except AssertionError as error:
        raise AssertionError(f"{error}; it was last: {last}") from None


def condition(obj: Obj, kind: str) -> Obj | None:
    """The True condition of that type, or None."""
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind and item.get("status") == "True":
            found: Obj = item
            return found
    return None


def job_finished(kube: RealKube, name: str, timeout: float = 120) -> Obj:
    """The Job once it has a Complete or Failed condition."""
    found: Obj = wait_until(
        lambda: (
            job
            if (job := kube.job(name)) and (condition(job, "Complete") or condition(job, "Failed"))
            else None
        ),
        timeout,
        f"Job {name} to finish",
        pause=0.5,
    )
    return found


# ------------------------------------------------------------------------- identities and their requests


def identity_kubeconfig(
    plane: ControlPlane,
    path: Path,
    namespace: str,
    *,
    token: str | None = None,
    certificate: tuple[Path, Path] | None = None,
) -> Path:
    """A kubeconfig of its own for one identity: a bearer token (a ServiceAccount's, from a TokenRequest)
    or a client certificate and key signed by the cluster's CA; its context's namespace is namespace."""
    user: dict[str, str] = {}
    if token is not None:
        user["token"] = token
    if certificate is not None:
        user["client-certificate"], user["client-key"] = (str(part) for part in certificate)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "runner",
                "cluster": {"server": plane.url, "certificate-authority": str(plane.pki / "ca.crt")},
            }
        ],
        "users": [{"name": "identity", "user": user}],
        "contexts": [
            {"name": "identity", "context": {"cluster": "runner", "user": "identity", "namespace": namespace}}
        ],
        "current-context": "identity",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


RECORDING = Path(__file__).resolve().parent / "recording"  # its sitecustomize records the requests


def _recording_env(log: Path, port: int) -> dict[str, str]:
    """The environment of a recorded runner: every Python process under it, those runner starts (a
    detached builder) included, appends its requests to the API server (on port) to log."""
    path = os.pathsep.join(filter(None, [str(RECORDING), str(REPO), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RUNNER_TEST_API_LOG": str(log),
        "RUNNER_TEST_API_PORT": str(port),
    }


def recorded_runner(
    log: Path, port: int, *args: str, timeout: float = 180, env: Mapping[str, str] | None = None
) -> Result:
    """`runner ARGS` as run_runner runs it, its requests to the API server (on port) appended to log."""
    done = subprocess.run(
        runner_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_recording_env(log, port), **(env or {})},
        cwd=REPO,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def recorded_runner_process(log: Path, port: int, *args: str) -> subprocess.Popen[str]:
    """`runner ARGS` started in the background (a follow), recorded as recorded_runner records."""
    return subprocess.Popen(
        runner_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_recording_env(log, port),
        cwd=REPO,
    )


_NAMESPACED = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<subresource>[^/]+))?)?$"
)
Grant = tuple[str, str, str]  # API group, resource (or resource/subresource), verb


def request_verb(line: str) -> Grant | None:
    """What RBAC checks for one recorded `METHOD /path?query` request, or None for a path outside a
    namespace's resources."""
    method, _, target = line.partition(" ")
    url = urlsplit(target)
    match = _NAMESPACED.match(url.path)
    if match is None:
        return None
    resource = match["resource"] + (f"/{match['subresource']}" if match["subresource"] else "")
    named = bool(match["name"])
    watching = parse_qs(url.query).get("watch", [""])[0].lower() in ("true", "1")
    verb = {
        "GET": "get" if named else ("watch" if watching else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[method]
    return match["group"] or "", resource, verb


def used_grants(log: Path) -> tuple[set[Grant], list[str]]:
    """The (group, resource, verb) of every recorded request, and the requests that are none of those."""
    used: set[Grant] = set()
    other: list[str] = []
    for line in log.read_text().splitlines() if log.exists() else []:
        found = request_verb(line)
        if found is None:
            other.append(line)
        else:
            used.add(found)
    return used, other


def granted(rules: Iterable[Mapping[str, Any]]) -> set[Grant]:
    """Every (group, resource, verb) a Role's rules grant."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


class LogFollower:
    """`runner logs -f RUN` running in the background, its output lines collected as they come; a context
    manager that kills it if it is still running at the end."""

    def __init__(self, run: str, *extra: str) -> None:
        self.run = run
        self.lines: list[str] = []  # stdout: the log
        self.notes: list[str] = []  # stderr
        command, pipe = runner_command("logs", "-f", *extra, run), subprocess.PIPE
        self.process = subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True)
        self.readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.notes))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Iterable[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for_line(self, line: str, timeout: float) -> None:
        """Until the follower has printed that line (failing at once if it ended without it)."""
        wait_until(
            lambda: line in self.lines or self.process.poll() is not None, timeout, f"{line!r} from logs -f"
        )
        assert line in self.lines, f"logs -f of {self.run} ended without {line!r}: {self.output()}"

    def finish(self, timeout: float) -> list[str]:
        """Its log lines once it has ended by itself (the run ended), checking that it succeeded."""
        code = self.process.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        assert code == 0, f"logs -f of {self.run} exited {code}: {self.output()}"
        return self.lines

    def output(self) -> str:
        return "\n".join([*self.lines, "--- stderr ---", *self.notes])

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        for reader in self.readers:
            reader.join(10)
