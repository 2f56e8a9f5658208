"""A node agent: Nodes without a kubelet, in the spirit of virtual-kubelet, on a real API server.

It registers Nodes (tests/support/nodeagent/nodes.py), keeps their Leases renewed and their Ready condition
fresh, watches the pods bound to them (one watch per node, on spec.nodeName=NODE, as each kubelet watches
only its own node's pods: an agent never sees, let alone runs, a pod bound to a node it does not own, such
as another agent's on the same API server), runs each through a PodRuntime (real Docker containers with
tests/support/sim/docker_runtime.py, or simulated durations in scale mode), and reports as a kubelet does
through pods/status: Pending/ContainerCreating, Running, then Succeeded or Failed with the container's
terminated state (exit code; Completed, Error or OOMKilled; FallbackToLogsOnError's message), or a waiting
reason when the container cannot start (ErrImagePull, CreateContainerConfigError, ...), with the kubelet's
events. A pod being deleted has its container stopped with the grace period it was deleted with (SIGTERM,
then SIGKILL), its final status reported, and then the kubelet's own delete with gracePeriodSeconds=0, which
completes a graceful deletion. Container output is kept per pod (logs.py) and served to the API server on
the kubelet's HTTPS endpoint (server.py), so `kubectl logs` works as on any cluster.

`lose(node)` is a node gone silent: its Lease is no longer renewed and its status no longer reported, its
containers die with it, so the real node-lifecycle controller marks it NotReady/Unknown, taints it and
evicts as on a real cluster. Pods of restartPolicy Always or OnFailure are run once, as if Never.

All API writes about pods happen on one worker thread, in the order things happened; each node's watch,
the heartbeats, the HTTPS endpoint and (scale mode) the timer driver have a thread each. close() stops them
all, stops every container, and (by default) deletes the agent's Nodes and Leases.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tests.support.nodeagent import nodes
from tests.support.nodeagent.logs import ContainerLog
from tests.support.nodeagent.nodes import NodeSpec, stamp
from tests.support.nodeagent.server import KubeletServer, LogLookupError
from tests.support.sim.runtime import PodRuntime

if TYPE_CHECKING:
    import docker
    from kubernetes.client import ApiClient
    from urllib3 import BaseHTTPResponse

Obj = dict[str, Any]

log = logging.getLogger(__name__)

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
TIMEOUT = (5, 30)
WATCH_SECONDS = 240
MESSAGE_LINES = 80  # FallbackToLogsOnError: the last 80 lines ...
MESSAGE_BYTES = 2048  # ... or 2 KiB of the log, whichever is smaller
POD_IP = "127.0.0.1"  # containers use the host's network: the pod's address is the node's
KUBELET = "kubelet"
AGENT_LABEL = "runner.dev/node-agent"
"""On every container the agent runs (its value: the agent's id), beside the runtime's own labels."""


class _Gone(Exception):
    """A watch's resource version is too old (410): list again."""


@dataclass(eq=False)
class _Pod:
    uid: str
    namespace: str
    name: str
    node: str
    container: str
    image: str
    grace: float
    termination_policy: str
    log: ContainerLog = field(default_factory=ContainerLog)
    created_at: str = ""
    started_at: str | None = None
    container_id: str = ""
    running: bool = False
    ended: bool = False
    killed: bool = False
    lost: bool = False  # its node or its pod is gone: nothing more is reported
    deleting: bool = False
    start_failed: str | None = None  # the waiting reason of a container that could not start
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # condition -> (status, since)


class _Sink:
    """A PodSink (tests/support/sim/runtime.py) for one pod: output to its log at once, the rest posted
    to the agent's worker."""

    def __init__(self, agent: NodeAgent, pod: _Pod) -> None:
        self._agent, self._pod = agent, pod

    def started(self) -> None:
        self._agent.post(lambda: self._agent.started(self._pod))

    def log(self, text: str) -> None:
        if not self._pod.lost:
            self._pod.log.write(text.encode())

    def exited(self, exit_code: int, *, oom_killed: bool = False) -> None:
        self._agent.post(lambda: self._agent.exited(self._pod, exit_code, oom_killed))

    def failed_to_start(self, reason: str, message: str) -> None:
        self._agent.post(lambda: self._agent.failed_to_start(self._pod, reason, message))


class NodeAgent:
    """Nodes on the API server behind `api`, their pods run by `runtime`.

    Use `NodeAgent.docker(...)` or `NodeAgent.scale(...)`; `start(specs)` registers the nodes and starts
    the threads, `close()` undoes it all. `pki` holds kubelet.crt/.key and ca.crt (scripts/cluster.sh).
    """

    def __init__(
        self,
        api: ApiClient,
        runtime: PodRuntime,
        pki: Path,
        *,
        runtime_version: str = "docker://20.10",
        heartbeat_seconds: float = 10.0,
        status_seconds: float = 60.0,
        driver: Callable[[], None] | None = None,
        runtime_lock: threading.Lock | None = None,
        delete_nodes: bool = True,
        agent_id: str = "",
    ) -> None:
        from kubernetes import client

        self.api = api
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.runtime = runtime
        self.pki = pki
        self.id = agent_id
        self.runtime_version = runtime_version
        self.heartbeat_seconds = heartbeat_seconds
        self.status_seconds = status_seconds
        self.delete_nodes = delete_nodes
        self._driver = driver
        self._runtime_lock = runtime_lock or threading.Lock()
        self.specs: dict[str, NodeSpec] = {}
        self.lost: set[str] = set()
        self._node_uids: dict[str, str] = {}
        self._pods: dict[str, _Pod] = {}  # by uid: the worker's
        self._by_name: dict[tuple[str, str], _Pod] = {}  # for the log endpoint
        self._names_lock = threading.Lock()
        self._nodes_lock = threading.Lock()
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._watch_responses: dict[str, BaseHTTPResponse] = {}  # by node: closed to stop its watch
        self._watching: set[str] = set()  # nodes with a watch thread
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.server = KubeletServer(pki / "kubelet.crt", pki / "kubelet.key", pki / "ca.crt", self._lookup)
        self._started = False

    # --- construction ------------------------------------------------------------------------------

    @classmethod
    def docker(
        cls, api: ApiClient, docker_client: docker.DockerClient, pki: Path, **options: Any
    ) -> NodeAgent:
        """Pods run as Docker containers (DockerRuntime), Secrets and ConfigMaps read from the API."""
        import uuid

        from tests.support.nodeagent.source import ApiObjectSource
        from tests.support.sim.docker_runtime import DockerRuntime

        agent_id = uuid.uuid4().hex[:12]
        source = ApiObjectSource(_core(api))
        runtime = DockerRuntime(source, docker_client, labels={AGENT_LABEL: agent_id})
        version = str(docker_client.version().get("Version", "")) or "unknown"
        return cls(api, runtime, pki, runtime_version=f"docker://{version}", agent_id=agent_id, **options)

    @classmethod
    def scale(
        cls,
        api: ApiClient,
        pki: Path,
        *,
        duration: Callable[[Obj], float] = lambda pod: 60.0,
        exit_code: Callable[[Obj], int] = lambda pod: 0,
        **options: Any,
    ) -> NodeAgent:
        """No containers: each pod "runs" for duration(pod) seconds of real time and exits with
        exit_code(pod) (ScaleRuntime's annotations apply too: sim.runner.dev/duration, ...)."""
        import uuid

        from tests.support.sim.clock import RealClock
        from tests.support.sim.scale import ScaleRuntime

        clock = RealClock()
        runtime = ScaleRuntime(clock, duration=duration, exit_code=exit_code)
        lock = threading.Lock()

        def drive() -> None:
            while (timer := clock.pop_due()) is not None:
                with lock:
                    timer.callback()

        return cls(
            api,
            runtime,
            pki,
            runtime_version="scale://simulated",
            driver=drive,
            runtime_lock=lock,
            agent_id=uuid.uuid4().hex[:12],
            **options,
        )

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self, specs: Iterable[NodeSpec] = ()) -> NodeAgent:
        self.server.start()
        self._started = True
        for spec in specs:
            self.add_node(spec)
        self._spawn(self._work, "nodeagent-worker")
        with self._nodes_lock:
            names = list(self.specs)
        for name in names:
            self._watch_node(name)
        self._spawn(self._heartbeat_loop, "nodeagent-heartbeat")
        if self._driver is not None:
            self._spawn(self._drive_loop, "nodeagent-timers")
        return self

    def __enter__(self) -> NodeAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching and heartbeating, stop every container, delete the Nodes (unless told not to)."""
        if not self._started:
            self.runtime.close()
            return
        self._stopping.set()
        with self._nodes_lock:
            responses = list(self._watch_responses.values())
        for response in responses:
            with contextlib.suppress(Exception):
                response.shutdown()
        for pod in list(self._pods.values()):
            pod.lost = True
        with self._runtime_lock:
            self.runtime.close()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(30)
        if self.delete_nodes:
            for name in list(self.specs):
                self._delete_node(name)
        self.server.stop()
        self._started = False

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def post(self, work: Callable[[], None]) -> None:
        self._queue.put(work)

    def _work(self) -> None:
        while (work := self._queue.get()) is not None:
            try:
                work()
            except Exception as error:  # one failed report must not stop the others
                log.exception("node agent: %s", error)
                self.errors.append(f"{type(error).__name__}: {error}")

    def settled(self) -> bool:
        """Nothing waits on the worker (for tests that want the agent caught up)."""
        return self._queue.empty()

    # --- nodes -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.port

    def add_node(self, spec: NodeSpec) -> Obj:
        """Register (or re-register) a node and its Lease; returns the Node as the API has it."""
        from kubernetes.client.exceptions import ApiException

        body = nodes.node_object(spec, self.port, stamp(), self.runtime_version)
        try:
            created = self._json(self.core.create_node, body)
        except ApiException as error:
            if error.status != 409:
                raise
            patch = {"metadata": {"labels": body["metadata"]["labels"]}, "spec": body["spec"]}
            self._json(self.core.patch_node, spec.name, patch, _content_type=STRATEGIC)
            created = self._json(
                self.core.patch_node_status, spec.name, {"status": body["status"]}, _content_type=STRATEGIC
            )
        with self._nodes_lock:
            self.specs[spec.name] = spec
            self.lost.discard(spec.name)
            self._node_uids[spec.name] = created["metadata"]["uid"]
        self._renew_lease(spec.name)
        if self._started and not self._stopping.is_set():
            self._watch_node(spec.name)
        return created

    def remove_node(self, name: str) -> None:
        """The node leaves: its containers are stopped and its Node and Lease deleted."""
        self.lose(name)
        self._delete_node(name)

    def lose(self, name: str) -> None:
        """The node goes silent: no more Lease renewals or status, its containers die unreported."""
        with self._nodes_lock:
            self.lost.add(name)
        self.post(lambda: self._lose_pods(name))

    def _lose_pods(self, name: str) -> None:
        for pod in list(self._pods.values()):
            if pod.node == name and not pod.lost:
                pod.lost = True
                if not pod.ended:
                    self._kill(pod, 0)

    def _delete_node(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        with self._nodes_lock:
            self.specs.pop(name, None)
            self.lost.discard(name)
            self._node_uids.pop(name, None)
            response = self._watch_responses.get(name)
        if response is not None:  # its watch ends: the node is no longer this agent's
            with contextlib.suppress(Exception):
                response.shutdown()
        deletes: tuple[Callable[[], object], ...] = (
            lambda: self.coordination.delete_namespaced_lease(
                name, nodes.LEASE_NAMESPACE, _request_timeout=TIMEOUT
            ),
            lambda: self.core.delete_node(name, _request_timeout=TIMEOUT),
        )
        for delete in deletes:
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise

    def _live_nodes(self) -> list[str]:
        with self._nodes_lock:
            return [name for name in self.specs if name not in self.lost]

    def _heartbeat_loop(self) -> None:
        last_status = time.monotonic()
        while not self._stopping.wait(self.heartbeat_seconds):
            report_status = time.monotonic() - last_status >= self.status_seconds
            for name in self._live_nodes():
                try:
                    self._renew_lease(name)
                    if report_status:
                        self._report_node(name)
                except Exception as error:
                    log.warning("node agent: heartbeat of %s: %s", name, error)
            if report_status:
                last_status = time.monotonic()

    def _renew_lease(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        renewed = nodes.micro_stamp()
        try:
            self.coordination.patch_namespaced_lease(
                name,
                nodes.LEASE_NAMESPACE,
                {"spec": {"renewTime": renewed, "holderIdentity": name}},
                _content_type=MERGE,
                _request_timeout=TIMEOUT,
            )
        except ApiException as error:
            if error.status != 404:
                raise
            with self._nodes_lock:
                uid = self._node_uids.get(name)
            if uid is not None:
                body = nodes.lease_object(name, uid, renewed)
                self.coordination.create_namespaced_lease(
                    nodes.LEASE_NAMESPACE, _dict_body(body), _request_timeout=TIMEOUT
                )

    def _report_node(self, name: str) -> None:
        now = stamp()
        self.core.patch_node_status(
            name,
            {"status": {"conditions": nodes.conditions(now)}},
            _content_type=STRATEGIC,
            _request_timeout=TIMEOUT,
        )

    def _drive_loop(self) -> None:
        assert self._driver is not None
        while not self._stopping.wait(0.05):
            self._driver()

    # --- watching pods ----------------------------------------------------------------------------

    def _watch_node(self, node: str) -> None:
        """Start the watch of node's pods, unless it has one."""
        with self._nodes_lock:
            if node in self._watching:
                return
            self._watching.add(node)
        self._spawn(functools.partial(self._watch_loop, node), f"nodeagent-watch-{node}")

    def _owns(self, node: str) -> bool:
        with self._nodes_lock:
            return node in self.specs

    def _watch_loop(self, node: str) -> None:
        """List and watch the pods bound to node, as its kubelet would, until the agent stops or the node
        is removed."""
        try:
            while not self._stopping.is_set() and self._owns(node):
                try:
                    version = self._list(node)
                    while not self._stopping.is_set() and self._owns(node):
                        version = self._watch(node, version)
                except _Gone:
                    continue
                except Exception as error:
                    if self._stopping.is_set() or not self._owns(node):
                        return
                    log.warning("node agent: pod watch of %s: %s; listing again", node, error)
                    self._stopping.wait(1)
        finally:
            with self._nodes_lock:
                self._watching.discard(node)

    def _list(self, node: str) -> str:
        listing = self._json(self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}")
        items = listing.get("items") or []
        present = {item["metadata"]["uid"] for item in items}
        for item in items:
            self.post(functools.partial(self.observe, "ADDED", item))
        self.post(lambda: self._forget_missing(node, present))
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, node: str, version: str) -> str:
        # unread (_preload_content=False), the answer is the HTTP response, not the V1PodList annotated
        response = cast(
            "BaseHTTPResponse",
            self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node}",
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(TIMEOUT[0], WATCH_SECONDS + 30),
            ),
        )
        with self._nodes_lock:
            self._watch_responses[node] = response
        try:
            if self._stopping.is_set() or not self._owns(node):
                return version
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.post(functools.partial(self.observe, kind, obj))
        finally:
            with self._nodes_lock:
                if self._watch_responses.get(node) is response:
                    del self._watch_responses[node]
            with contextlib.suppress(Exception):
                response.release_conn()
        return version

    # --- pods (on the worker) ---------------------------------------------------------------------

    def observe(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid"))
        pod = self._pods.get(uid)
        if kind == "DELETED":
            if pod is not None:
                self._forget(pod)
            return
        node = (obj.get("spec") or {}).get("nodeName")
        with self._nodes_lock:
            ours = node in self.specs
            lost = node in self.lost
        if pod is None:
            if not ours or lost or self._stopping.is_set():
                return
            phase = (obj.get("status") or {}).get("phase") or "Pending"
            if meta.get("deletionTimestamp"):
                self._finish_unknown(obj, phase)
            elif phase in ("Pending", "Running") and not _started_before(obj):
                self._start(obj, str(node))
            return
        if meta.get("deletionTimestamp") and not pod.deleting:
            pod.deleting = True
            if pod.ended:
                self._delete(pod)
            elif not pod.lost:
                grace = meta.get("deletionGracePeriodSeconds")
                self._kill(pod, float(pod.grace if grace is None else grace))

    def _forget_missing(self, node: str, present: set[str]) -> None:
        """After a relist of node's pods: those the agent runs there that the API no longer has were
        deleted meanwhile."""
        for pod in list(self._pods.values()):
            if pod.node == node and pod.uid not in present:
                self._forget(pod)

    def _forget(self, pod: _Pod) -> None:
        self._pods.pop(pod.uid, None)
        with self._names_lock:
            if self._by_name.get((pod.namespace, pod.name)) is pod:
                del self._by_name[(pod.namespace, pod.name)]
        if not pod.ended:
            pod.lost = True
            self._kill(pod, 0)

    def _finish_unknown(self, obj: Obj, phase: str) -> None:
        """A pod being deleted that this agent never ran (it was deleted before it started, or by an
        earlier agent): as kubelet, make it terminal and complete its deletion."""
        meta = obj["metadata"]
        if phase not in ("Succeeded", "Failed"):
            container = obj["spec"]["containers"][0]
            now = stamp()
            terminated = {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was deleted.  The container "
                "used to be Running",
                "startedAt": None,
                "finishedAt": now,
            }
            status = {
                "phase": "Failed",
                "containerStatuses": [
                    _container_status(
                        container["name"], container.get("image", ""), "", terminated=terminated
                    )
                ],
            }
            self._patch(meta["namespace"], meta["name"], meta["uid"], status)
        self._delete_object(meta["namespace"], meta["name"], meta["uid"])

    def _start(self, obj: Obj, node: str) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        container = spec["containers"][0]
        pod = _Pod(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            node=node,
            container=container["name"],
            image=str(container.get("image", "")),
            grace=float(spec.get("terminationGracePeriodSeconds", 30)),
            termination_policy=str(container.get("terminationMessagePolicy") or "File"),
            created_at=stamp(),
        )
        self._pods[pod.uid] = pod
        with self._names_lock:
            self._by_name[(pod.namespace, pod.name)] = pod
        unready = f"containers with unready status: [{pod.container}]"
        status = {
            "phase": "Pending",
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": pod.created_at,
            "conditions": self._conditions(
                pod,
                PodReadyToStartContainers=("True", None, None),
                Initialized=("True", None, None),
                Ready=("False", "ContainersNotReady", unready),
                ContainersReady=("False", "ContainersNotReady", unready),
            ),
            "containerStatuses": [
                _container_status(pod.container, pod.image, "", waiting={"reason": "ContainerCreating"})
            ],
        }
        if not self._patch(pod.namespace, pod.name, pod.uid, status):
            self._forget(pod)
            return
        with self._runtime_lock:
            self.runtime.start(obj, node, _Sink(self, pod))

    def _kill(self, pod: _Pod, grace: float) -> None:
        if pod.killed:
            return
        pod.killed = True
        if pod.start_failed is not None and not pod.ended and not pod.lost:
            # nothing runs to stop: the kubelet gives up on the container itself
            self.post(lambda: self.exited(pod, 137, False, reason="ContainerStatusUnknown"))
            return
        if pod.running and not pod.lost:
            self._event(pod, "Killing", f"Stopping container {pod.container}")
        with self._runtime_lock:
            self.runtime.kill(pod.uid, grace)

    def started(self, pod: _Pod) -> None:
        if pod.lost or pod.ended or pod.running:
            return
        pod.running = True
        pod.started_at = stamp()
        pod.container_id = f"docker://{pod.uid.replace('-', '')}{'0' * 32}"[:73]
        status = {
            "phase": "Running",
            "conditions": self._conditions(
                pod, Ready=("True", None, None), ContainersReady=("True", None, None)
            ),
            "containerStatuses": [
                _container_status(
                    pod.container,
                    pod.image,
                    pod.container_id,
                    running={"startedAt": pod.started_at},
                    ready=True,
                )
            ],
        }
        self._patch(pod.namespace, pod.name, pod.uid, status)
        self._event(pod, "Pulled", f'Container image "{pod.image}" already present on machine')
        self._event(pod, "Created", f"Created container: {pod.container}")
        self._event(pod, "Started", f"Started container {pod.container}")

    def exited(self, pod: _Pod, exit_code: int, oom_killed: bool, reason: str | None = None) -> None:
        pod.log.close()
        if pod.lost or pod.ended:
            return
        pod.ended = True
        if exit_code == 137 and not pod.killed:
            log.warning("node agent: pod %s/%s was killed (137) unasked", pod.namespace, pod.name)
        now = stamp()
        reason = reason or ("OOMKilled" if oom_killed else "Completed" if exit_code == 0 else "Error")
        terminated: Obj = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": pod.started_at or now,
            "finishedAt": now,
            "message": None,
        }
        if pod.container_id:
            terminated["containerID"] = pod.container_id
        if exit_code != 0 and pod.termination_policy == "FallbackToLogsOnError":
            terminated["message"] = pod.log.tail(MESSAGE_LINES, MESSAGE_BYTES) or None
        status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": self._conditions(
                pod,
                PodReadyToStartContainers=("False", None, None),
                Ready=("False", "PodCompleted", None),
                ContainersReady=("False", "PodCompleted", None),
            ),
            "containerStatuses": [
                _container_status(pod.container, pod.image, pod.container_id, terminated=terminated)
            ],
        }
        self._patch(pod.namespace, pod.name, pod.uid, status)
        if pod.deleting:
            self._delete(pod)

    def failed_to_start(self, pod: _Pod, reason: str, message: str) -> None:
        if pod.lost or pod.ended:
            return
        pod.start_failed = reason
        log.warning("node agent: pod %s/%s cannot start: %s: %s", pod.namespace, pod.name, reason, message)
        unready = f"containers with unready status: [{pod.container}]"
        status = {
            "conditions": self._conditions(pod, Ready=("False", "ContainersNotReady", unready)),
            "containerStatuses": [
                _container_status(
                    pod.container, pod.image, "", waiting={"reason": reason, "message": message}
                )
            ],
        }
        self._patch(pod.namespace, pod.name, pod.uid, status)
        self._event(pod, "Failed", message, warning=True)
        self._event(pod, "Failed", f"Error: {reason}", warning=True)
        if pod.deleting:
            pod.killed = False
            self._kill(pod, 0)

    def _conditions(self, pod: _Pod, **wanted: tuple[str, str | None, str | None]) -> list[Obj]:
        """The kubelet's conditions (merged by type into what the API has: PodScheduled and
        DisruptionTarget are others'), their transition times kept while their status stays."""
        now = stamp()
        found = []
        for kind, (status, reason, message) in wanted.items():
            previous = pod.transitions.get(kind)
            since = previous[1] if previous and previous[0] == status else now
            pod.transitions[kind] = (status, since)
            found.append(
                {
                    "type": kind,
                    "status": status,
                    "lastProbeTime": None,
                    "lastTransitionTime": since,
                    "reason": reason,
                    "message": message,
                }
            )
        return found

    # --- API writes --------------------------------------------------------------------------------

    def _patch(self, namespace: str, name: str, uid: str, status: Obj) -> bool:
        """A strategic merge patch of pods/status, the uid as precondition; False when the pod is gone."""
        from kubernetes.client.exceptions import ApiException

        body = {"metadata": {"uid": uid}, "status": status}
        try:
            self.core.patch_namespaced_pod_status(
                name,
                namespace,
                body,
                _content_type=STRATEGIC,
                _request_timeout=TIMEOUT,
                _preload_content=False,
            )
        except ApiException as error:
            if error.status in (404, 409) or (error.status == 422 and _uid_mismatch(error)):
                return False  # gone, or a new pod of the same name
            raise
        return True

    def _delete(self, pod: _Pod) -> None:
        self._delete_object(pod.namespace, pod.name, pod.uid)

    def _delete_object(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's part of a graceful deletion: delete now, for this very pod (uid precondition)."""
        from kubernetes.client.exceptions import ApiException

        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                body=_dict_body(body),
                grace_period_seconds=0,
                _request_timeout=TIMEOUT,
                _preload_content=False,
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _event(self, pod: _Pod, reason: str, message: str, *, warning: bool = False) -> None:
        """A kubelet event about the pod; best effort, as kubelet's are."""
        now = nodes.micro_stamp()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{pod.name}.", "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": pod.namespace,
                "name": pod.name,
                "uid": pod.uid,
                "fieldPath": f"spec.containers{{{pod.container}}}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": KUBELET, "host": pod.node},
            "reportingComponent": KUBELET,
            "reportingInstance": pod.node,
            "firstTimestamp": stamp(),
            "lastTimestamp": stamp(),
            "eventTime": now,
            "action": reason,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(
                pod.namespace, _dict_body(body), _request_timeout=TIMEOUT, _preload_content=False
            )
        except Exception as error:
            log.debug("node agent: event %s of %s: %s", reason, pod.name, error)

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        response = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
        found: Obj = json.loads(response.data)
        return found

    # --- the log endpoint (any thread) ------------------------------------------------------------

    def _lookup(self, namespace: str, name: str, container: str) -> ContainerLog:
        with self._names_lock:
            pod = self._by_name.get((namespace, name))
        if pod is None:
            raise LogLookupError(404, f'pod "{name}" in namespace "{namespace}" not found on this node')
        if container != pod.container:
            raise LogLookupError(400, f'container "{container}" is not valid for pod "{name}"')
        if not pod.running and not pod.ended:
            reason = pod.start_failed or "ContainerCreating"
            raise LogLookupError(
                400, f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        return pod.log

    def pod_log(self, namespace: str, name: str) -> str:
        """What the agent holds of a pod's output (for tests)."""
        return self._lookup(namespace, name, self._by_name[(namespace, name)].container).text()


def _dict_body(body: Obj) -> Any:
    """A plain dict as a request body: the client sends dicts as they are, though its annotations ask for
    its models (V1Lease, V1DeleteOptions, CoreV1Event)."""
    return body


def _core(api: ApiClient) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _started_before(obj: Obj) -> bool:
    """The pod's container already ran or runs (an earlier agent's): not started again."""
    for status in (obj.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _uid_mismatch(error: Any) -> bool:
    return "uid" in str(getattr(error, "body", "") or "").lower()


def _container_status(
    name: str,
    image: str,
    container_id: str,
    *,
    waiting: Obj | None = None,
    running: Obj | None = None,
    terminated: Obj | None = None,
    ready: bool = False,
) -> Obj:
    """One containerStatuses entry; the states not in force are null, so that a strategic merge patch
    removes them (a container has one state)."""
    if waiting is not None:
        waiting = {"reason": waiting.get("reason"), "message": waiting.get("message")}
    return {
        "name": name,
        "image": image,
        "imageID": f"{image.split(':', maxsplit=1)[0]}@sha256:{'0' * 64}" if image else "",
        "containerID": container_id or None,
        "ready": ready,
        "started": running is not None,
        "restartCount": 0,
        "state": {"waiting": waiting, "running": running, "terminated": terminated},
    }
