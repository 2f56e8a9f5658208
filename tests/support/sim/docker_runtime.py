"""A PodRuntime (runtime.py) that runs each pod's container as a real Docker container.

The simulated kubelet (or the node agent of tests/support/nodeagent, in front of a real API server) hands
a pod bound to one of its nodes here; this runtime does what kubelet and its container runtime would: pull
the image (pull policy honoured), resolve env and volumes from the Secrets and ConfigMaps of its
`ObjectSource` (the fake API server's store, or a real API server), create the container with the pod's
securityContext and limits, stream its output to the sink, and report how it ended.
The translation rules live in docker_podspec.py.

How it differs from a node, on purpose:
- Host networking: a pod reaches loopback services (the S3 stand-in, the registry) as a real pod reaches
  cluster services; its IP is `pod_ip` (127.0.0.1), which the kubelet may report as status.podIP. A pod
  of a headless Service's subdomain (a multi-worker run) is on a network of its subdomain's instead,
  where its peers resolve by name as through cluster DNS (subdomains.py).
- nvidia.com/gpu limits are ignored: no GPU can be given to a container here, so GPU pods run on CPU.
- One container per pod, no init containers; a configMap or secret volume that is missing fails the
  pod (CreateContainerConfigError with kubelet's MountVolume.SetUp words) instead of waiting for it.
- A container that cannot start (its command not found, ...) is failed_to_start("RunContainerError").
- kill() before the container started (the image still pulling, env still resolving) reports
  exited(137) at once, without started(): kubelet too marks a container that never ran, of a pod deleted
  while ContainerCreating, as terminated with exit code 137 (ContainerStatusUnknown).

Every container carries the labels `sim.runner.dev/pod-uid`, `sim.runner.dev/pod` (namespace/name),
`sim.runner.dev/node` and `sim.runner.dev/runtime` (this runtime's id, which close() sweeps by), and is
named like kubelet's (`k8s_<container>_<pod>_<ns>_<uid>_0`). It never carries
`app.kubernetes.io/managed-by` (from the pod's labels or otherwise): the tests' leftover guard counts
those, for the runner's own containers. Files for volumes live under one temporary directory per runtime
(`root`), one subdirectory per pod, removed when the pod's container is gone.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.sim import docker_podspec as podspec
from tests.support.sim.docker_podspec import ObjectSource, StartFailure
from tests.support.sim.runtime import Obj, PodSink
from tests.support.sim.subdomains import Subdomains

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

LABEL_POD_UID = "sim.runner.dev/pod-uid"
LABEL_POD = "sim.runner.dev/pod"
LABEL_NODE = "sim.runner.dev/node"
LABEL_RUNTIME = "sim.runner.dev/runtime"

KILLED_EXIT_CODE = 137
CLOSE_TIMEOUT_S = 120.0
"""How long close() waits for pod threads (a pull in flight cannot be interrupted)."""


@dataclass(eq=False)
class _Pod:
    """One pod's state. `lock` orders the hand-over between the pod's thread and kill(): a kill before
    the container exists reports the end itself; after, the thread reports what the container did."""

    uid: str
    sink: PodSink
    workdir: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    container: Container | None = None
    killed: bool = False
    started: bool = False
    ended: bool = False
    thread: threading.Thread | None = None


class DockerRuntime:
    """Runs pods as Docker containers on the engine behind `client`, env and volumes from `source`.
    `labels` are added to every container's (say, whose runtime it is)."""

    pod_ip = "127.0.0.1"

    def __init__(
        self,
        source: ObjectSource,
        client: docker.DockerClient,
        *,
        root: Path | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.id = uuid.uuid4().hex[:12]
        self.labels = dict(labels or {})
        if root is None:
            root = Path(tempfile.mkdtemp(prefix=f"sim-docker-runtime-{self.id}-"))
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._lock = threading.Lock()
        self._pods: dict[str, _Pod] = {}
        self._stoppers: list[threading.Thread] = []
        self._closed = False
        self.subdomains = Subdomains(client, self.id, (LABEL_RUNTIME, self.id))

    # --- the protocol -------------------------------------------------------------------------------

    def start(self, pod: Obj, node: str, sink: PodSink) -> None:
        uid = str(pod["metadata"]["uid"])
        with self._lock:
            if self._closed:
                raise RuntimeError("this DockerRuntime is closed")
            if uid in self._pods:
                raise ValueError(f"pod {uid} is already running on this runtime")
            state = _Pod(uid, sink, self.root / uid)
            self._pods[uid] = state
        state.thread = threading.Thread(
            target=self._run, args=(state, pod, node), name=f"sim-pod-{uid[:8]}", daemon=True
        )
        state.thread.start()

    def kill(self, pod_uid: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace (rounded up to whole seconds, as docker stop takes them).
        Returns at once: the stop runs in its own thread and the pod's thread reports the exit."""
        with self._lock:
            state = self._pods.get(pod_uid)
        if state is None:
            return
        with state.lock:
            state.killed = True
            container = state.container
            if container is None:
                self._end(state, lambda: state.sink.exited(KILLED_EXIT_CODE))
                return
        stopper = threading.Thread(
            target=self._stop, args=(container, grace_seconds), name=f"sim-stop-{pod_uid[:8]}", daemon=True
        )
        with self._lock:
            self._stoppers = [*(t for t in self._stoppers if t.is_alive()), stopper]
        stopper.start()

    def close(self) -> None:
        """Kill every pod at once (no grace), wait for their threads, then remove whatever is left."""
        import docker

        with self._lock:
            self._closed = True
            states = list(self._pods.values())
        for state in states:
            self.kill(state.uid, 0)
        give_up = time.monotonic() + CLOSE_TIMEOUT_S
        with self._lock:
            threads = [state.thread for state in states if state.thread] + self._stoppers
        for thread in threads:
            thread.join(max(0.0, give_up - time.monotonic()))
        for container in self.containers():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        self.subdomains.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def holding(self) -> set[str]:
        """The uids of the pods this runtime still holds: not ended, or their container not yet removed."""
        with self._lock:
            return set(self._pods)

    def containers(self) -> list[Container]:
        """This runtime's containers, running or not (by its `sim.runner.dev/runtime` label)."""
        found: list[Container] = self.client.containers.list(
            all=True, filters={"label": f"{LABEL_RUNTIME}={self.id}"}
        )
        return found

    # --- one pod ------------------------------------------------------------------------------------

    def _run(self, state: _Pod, pod: Obj, node: str) -> None:
        try:
            container = self._create(state, pod, node)
            if container is None:
                return  # killed before it existed; kill() reported
            state.sink.started()
            self._follow(state, container)
            code, oom_killed = self._outcome(container)
            self._end(state, lambda: state.sink.exited(code, oom_killed=oom_killed))
        except StartFailure as failure:
            reason, message = failure.reason, failure.message
            self._end(state, lambda: state.sink.failed_to_start(reason, message))
        except Exception as error:
            if state.started:
                self._end(state, lambda: state.sink.exited(KILLED_EXIT_CODE))
            else:
                text = f"{type(error).__name__}: {error}"
                self._end(state, lambda: state.sink.failed_to_start("RunContainerError", text))
            raise
        finally:
            self._forget(state)

    def _create(self, state: _Pod, pod: Obj, node: str) -> Container | None:
        """Pull, resolve, create and start; None when killed on the way. Raises StartFailure."""
        import docker

        container_spec = podspec.only_container(pod)
        image = str(container_spec["image"])
        image_user = self._ensure_image(image, podspec.pull_policy(container_spec))
        if state.killed:
            return None
        podspec.check_non_root(pod, container_spec, image_user)
        env = podspec.resolve_env(pod, container_spec, self.source, node=node, pod_ip=self.pod_ip)
        state.workdir.mkdir()
        volumes = podspec.write_volumes(pod, self.source, state.workdir)
        config = podspec.container_config(pod, container_spec, env)
        mounts = [
            docker.types.Mount(bind.target, bind.source, type="bind", read_only=bind.read_only)
            for bind in podspec.binds(container_spec, volumes)
        ]
        meta = pod["metadata"]
        labels = {
            **self.labels,
            LABEL_POD_UID: state.uid,
            LABEL_POD: f"{meta.get('namespace')}/{meta.get('name')}",
            LABEL_NODE: node,
            LABEL_RUNTIME: self.id,
        }
        kwargs = config.docker_kwargs()
        networking: dict[str, Any] = {"network_mode": "host"}
        if pod["spec"].get("subdomain"):
            networking = self.subdomains.join(pod, state.uid, kwargs["environment"])
        with state.lock:
            if state.killed:
                return None
            try:
                state.container = self.client.containers.create(
                    image,
                    name=podspec.container_name(pod, container_spec),
                    labels=labels,
                    mounts=mounts,
                    detach=True,
                    **networking,
                    **kwargs,
                )
            except docker.errors.APIError as error:
                raise StartFailure("CreateContainerError", str(error.explanation or error)) from error
            try:
                state.container.start()
            except docker.errors.APIError as error:
                raise StartFailure("RunContainerError", str(error.explanation or error)) from error
            state.started = True
            return state.container

    def _ensure_image(self, image: str, policy: str) -> str:
        """Have the image locally as the pull policy says; its configured user (for runAsNonRoot)."""
        import docker
        from docker.utils import parse_repository_tag

        local = None
        with contextlib.suppress(docker.errors.ImageNotFound):
            local = self.client.images.get(image)
        if policy == "Never" and local is None:
            raise StartFailure(
                "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
            )
        if policy == "Always" or local is None:
            repository, tag = parse_repository_tag(image)
            try:
                local = self.client.images.pull(repository, tag=tag or "latest")
            except docker.errors.APIError as error:
                detail = error.explanation or str(error)
                raise StartFailure("ErrImagePull", f'Failed to pull image "{image}": {detail}') from error
        config = local.attrs.get("Config") or {}
        return str(config.get("User") or "")

    def _follow(self, state: _Pod, container: Container) -> None:
        """Hand the container's output to the sink as it comes, until the container has ended."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # the stream ends when the container does; an engine that drops it (close() removing the
        # container) ends it early, and the exit code then says what happened
        with contextlib.suppress(Exception):
            for chunk in container.logs(stream=True, follow=True):
                if text := decoder.decode(chunk):
                    state.sink.log(text)
        if rest := decoder.decode(b"", final=True):
            state.sink.log(rest)

    def _outcome(self, container: Container) -> tuple[int, bool]:
        import docker

        try:
            code = int(container.wait()["StatusCode"])
            container.reload()
        except docker.errors.NotFound:
            return KILLED_EXIT_CODE, False  # removed under us, by close()
        return code, bool(container.attrs["State"].get("OOMKilled"))

    def _stop(self, container: Container, grace_seconds: float) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.stop(timeout=max(0, math.ceil(grace_seconds)))

    def _end(self, state: _Pod, report: Callable[[], None]) -> None:
        """Report the pod's end to its sink, once, whoever gets there first."""
        with state.lock:
            if state.ended:
                return
            state.ended = True
            report()

    def _forget(self, state: _Pod) -> None:
        """Remove the pod's container and files; the pod is no longer this runtime's."""
        import docker

        with state.lock:
            container = state.container
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
        shutil.rmtree(state.workdir, ignore_errors=True)
        self.subdomains.leave(state.uid)
        with self._lock:
            self._pods.pop(state.uid, None)
