"""The kubelets of every simulated node: they run bound pods through a PodRuntime and own pod status.

A pod bound to a live node goes Pending/ContainerCreating at once, Running when the runtime says the
container started, then Succeeded or Failed with the container's terminated state (exitCode; reason
Completed, Error or OOMKilled; with terminationMessagePolicy FallbackToLogsOnError, a failed container's
message is the tail of its log, as the real kubelet does). A container that never starts leaves the pod
Pending with the runtime's waiting reason (ErrImagePull, CreateContainerConfigError, ...). Output goes
into the store's pod logs, so pods/log (follow too) serves it while the container runs.

A pod being deleted (deletionTimestamp) or deleted has its container killed with the pod's grace period;
a deleted pod that was not finished ends Failed, as the kubelet reports a pod it stopped.

Runtimes report from their own threads: every PodSink call is posted to the simulator's work queue and
applied on its worker, in order. Reports about pods on a lost node are dropped: that kubelet is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.apiserver.store import WatchEvent
from tests.support.sim.api import PODS, ClusterApi, Obj, key_of, set_condition, terminal
from tests.support.sim.runtime import PodRuntime

KUBELET = "kubelet"
MESSAGE_LINES = 80  # FallbackToLogsOnError: the last 80 lines ...
MESSAGE_BYTES = 2048  # ... or 2 KiB of the log, whichever is smaller


@dataclass
class _Run:
    key: tuple[str, str]
    node: str
    container: str
    image: str
    grace: float
    running: bool = False
    ended: bool = False
    killed: bool = False
    lost: bool = False
    start_failed: bool = False
    tail: list[str] = field(default_factory=list)
    container_id: str = ""


class _Sink:
    """A PodSink that posts each report to the simulator's worker."""

    def __init__(self, kubelet: Kubelet, uid: str) -> None:
        self._kubelet, self._uid = kubelet, uid

    def started(self) -> None:
        self._kubelet.post(lambda: self._kubelet.started(self._uid))

    def log(self, text: str) -> None:
        self._kubelet.post(lambda: self._kubelet.logged(self._uid, text))

    def exited(self, exit_code: int, *, oom_killed: bool = False) -> None:
        self._kubelet.post(lambda: self._kubelet.exited(self._uid, exit_code, oom_killed))

    def failed_to_start(self, reason: str, message: str) -> None:
        self._kubelet.post(lambda: self._kubelet.failed_to_start(self._uid, reason, message))


class Kubelet:
    def __init__(
        self, api: ClusterApi, runtime: PodRuntime, post: Callable[[Callable[[], None]], None]
    ) -> None:
        self.api = api
        self.runtime = runtime
        self.post = post
        self.nodes: dict[str, int] = {}  # live nodes and their index (for pod IPs)
        self.lost: set[str] = set()
        self.runs: dict[str, _Run] = {}  # by pod uid
        self._ips: dict[str, int] = {}
        self._serial = 0

    # --- following the store ---------------------------------------------------------------------------

    def observe(self, event: WatchEvent) -> None:
        if event.rt.plural == "nodes":
            name = event.obj["metadata"]["name"]
            if event.type == "DELETED":
                self.nodes.pop(name, None)
                self.lose(name)
            elif name not in self.nodes:
                self.nodes[name] = len(self.nodes) + 1
        elif event.rt.plural == "pods":
            self._observe_pod(event)

    def _observe_pod(self, event: WatchEvent) -> None:
        pod = event.obj
        uid = pod["metadata"]["uid"]
        run = self.runs.get(uid)
        if event.type == "DELETED":
            if run is not None:
                self.runs.pop(uid, None)  # reports about a pod that is gone are dropped
                if not run.ended:
                    run.lost = True
                    self._kill(uid, run)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if run is None:
            phase = (pod.get("status") or {}).get("phase")
            live = isinstance(node, str) and node in self.nodes and node not in self.lost
            if live and phase == "Pending" and not pod["metadata"].get("deletionTimestamp"):
                assert isinstance(node, str)
                self._start(pod, node)
            return
        if pod["metadata"].get("deletionTimestamp") and not run.ended:
            self._kill(uid, run)

    # --- starting and stopping -------------------------------------------------------------------------

    def _start(self, pod: Obj, node: str) -> None:
        uid = pod["metadata"]["uid"]
        spec = pod["spec"]
        container = spec["containers"][0]
        self._serial += 1
        run = _Run(
            key_of(pod),
            node,
            container["name"],
            container.get("image", ""),
            float(spec.get("terminationGracePeriodSeconds", 30)),
            container_id=f"containerd://{self._serial:064x}",
        )
        self.runs[uid] = run
        index = self.nodes[node]
        self._ips[node] = self._ips.get(node, 1) + 1
        pod_ip = f"10.244.{index}.{self._ips[node] % 250 + 2}"
        host_ip = f"10.0.{index // 250}.{index % 250 + 2}"
        now = self.api.now_stamp()

        def creating(current: Obj) -> None:
            status = current.setdefault("status", {})
            status.update(
                phase="Pending",
                hostIP=host_ip,
                hostIPs=[{"ip": host_ip}],
                podIP=pod_ip,
                podIPs=[{"ip": pod_ip}],
                startTime=status.get("startTime") or now,
            )
            set_condition(status, "PodReadyToStartContainers", True, now)
            set_condition(status, "Initialized", True, now)
            unready = f"containers with unready status: [{run.container}]"
            set_condition(status, "Ready", False, now, "ContainersNotReady", message=unready)
            set_condition(status, "ContainersReady", False, now, "ContainersNotReady", message=unready)
            status["containerStatuses"] = [self._container(run, {"waiting": {"reason": "ContainerCreating"}})]

        if self.api.mutate(PODS, run.key, creating) is None:
            del self.runs[uid]
            return
        self.runtime.start(pod, node, _Sink(self, uid))

    def _kill(self, uid: str, run: _Run) -> None:
        if run.killed:
            return
        run.killed = True
        if run.start_failed and not run.ended and not run.lost:
            # nothing runs to kill: the kubelet gives up on the container itself
            self.post(lambda: self.exited(uid, 137, False, reason="ContainerStatusUnknown"))
        else:
            self.runtime.kill(uid, run.grace)

    def lose(self, node: str) -> None:
        """The node's kubelet is gone: its containers die with it and nothing more is reported."""
        self.lost.add(node)
        for uid, run in self.runs.items():
            if run.node == node and not run.ended:
                run.lost = True
                self._kill(uid, run)

    # --- the runtime's reports -------------------------------------------------------------------------

    def _live(self, uid: str) -> _Run | None:
        run = self.runs.get(uid)
        return None if run is None or run.lost or run.ended else run

    def _container(self, run: _Run, state: Obj, *, ready: bool = False, restarts: int = 0) -> Obj:
        status: Obj = {
            "name": run.container,
            "image": run.image,
            "imageID": f"{run.image.split(':')[0]}@sha256:{'0' * 64}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": restarts,
            "state": state,
        }
        if "waiting" not in state:
            status["containerID"] = run.container_id
        return status

    def started(self, uid: str) -> None:
        run = self._live(uid)
        if run is None or run.running:
            return
        run.running = True
        now = self.api.now_stamp()

        def running(current: Obj) -> None:
            status = current.setdefault("status", {})
            status["phase"] = "Running"
            set_condition(status, "Ready", True, now)
            set_condition(status, "ContainersReady", True, now)
            status["containerStatuses"] = [self._container(run, {"running": {"startedAt": now}}, ready=True)]

        pod = self.api.mutate(PODS, run.key, running)
        if pod is not None:
            self.api.event(
                pod, "Pulled", f'Container image "{run.image}" already present on machine', component=KUBELET
            )
            self.api.event(pod, "Created", f"Created container {run.container}", component=KUBELET)
            self.api.event(pod, "Started", f"Started container {run.container}", component=KUBELET)

    def logged(self, uid: str, text: str) -> None:
        run = self._live(uid)
        if run is None or not text:
            return
        run.tail = (run.tail + text.splitlines(keepends=True))[-MESSAGE_LINES:]
        self.api.store.append_log(run.key[0], run.key[1], text, run.container)

    def exited(self, uid: str, exit_code: int, oom_killed: bool, reason: str | None = None) -> None:
        run = self._live(uid)
        if run is None:
            return
        run.ended = True
        now = self.api.now_stamp()
        reason = reason or ("OOMKilled" if oom_killed else "Completed" if exit_code == 0 else "Error")

        def finished(current: Obj) -> None:
            status = current.setdefault("status", {})
            previous = (status.get("containerStatuses") or [{}])[0].get("state") or {}
            started = (previous.get("running") or {}).get("startedAt") or now
            terminated: Obj = {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": now,
                "containerID": run.container_id,
            }
            container = next(c for c in current["spec"]["containers"] if c["name"] == run.container)
            if exit_code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = "".join(run.tail).encode()[-MESSAGE_BYTES:].decode(errors="ignore")
                if message:
                    terminated["message"] = message
            status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
            set_condition(status, "PodReadyToStartContainers", False, now)
            set_condition(status, "Ready", False, now, "PodCompleted")
            set_condition(status, "ContainersReady", False, now, "PodCompleted")
            status["containerStatuses"] = [self._container(run, {"terminated": terminated})]

        self.api.mutate(PODS, run.key, finished)
        if run.killed:
            self.runs.pop(uid, None)

    def failed_to_start(self, uid: str, reason: str, message: str) -> None:
        run = self._live(uid)
        if run is None:
            return
        run.start_failed = True
        now = self.api.now_stamp()

        def waiting(current: Obj) -> None:
            status = current.setdefault("status", {})
            if terminal(current):
                return
            set_condition(
                status,
                "Ready",
                False,
                now,
                "ContainersNotReady",
                message=f"containers with unready status: [{run.container}]",
            )
            state = {"waiting": {"reason": reason, "message": message}}
            status["containerStatuses"] = [self._container(run, state)]

        pod = self.api.mutate(PODS, run.key, waiting)
        if pod is not None:
            self.api.event(pod, "Failed", message, warning=True, component=KUBELET)
            self.api.event(pod, "Failed", f"Error: {reason}", warning=True, component=KUBELET)
