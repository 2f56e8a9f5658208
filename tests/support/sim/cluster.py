"""A simulated GPU cluster behind the fake API server (tests/support/apiserver/apiserver.py).

    sim = Simulator(server).start()            # scale runtime, fake clock
    sim.add_nodes(3, gpus=8)                   # Ready nodes, nvidia.com/gpu, GFD labels, the GPU taint
    server.create(job)                         # or the runner, or kubectl, over HTTP
    sim.settle()                               # process until quiescent: how tests wait, never sleeping
    sim.advance(60)                            # move fake time; due timers fire in order
    sim.lose_node("gpu-node-1")                # chaos: the node goes unreachable
    sim.stop()

What is simulated, with Kubernetes 1.31's behaviour and wording (each module's docstring has details):
- nodes (nodes.py): capacity/allocatable, labels, the nvidia.com/gpu=present:NoSchedule taint, Ready;
- default-scheduler (scheduler.py, placement.py): requests (defaulted from limits), nodeSelector,
  taints/tolerations, cordoned nodes; FailedScheduling messages exactly as kube-scheduler words them;
- job-controller (jobs.py, policy.py): pods with the job-tracking finalizer, backoffLimit with exponential
  backoff, podFailurePolicy, activeDeadlineSeconds, suspend/resume, ttlSecondsAfterFinished, the
  SuccessCriteriaMet/FailureTarget interim conditions;
- cronjob-controller (cronjobs.py): time zones, startingDeadlineSeconds, missed slots, concurrency
  policies, history limits;
- kubelets (kubelet.py): pod phases, container states, logs (pods/log, follow), kills on deletion,
  through a PodRuntime (runtime.py): the scale runtime (scale.py) or real containers;
- node loss (lifecycle.py): unreachable taints, taint-manager eviction with DisruptionTarget;
- time (clock.py): a fake clock the test advances, or real time for end-to-end runs. The API server's
  timestamps come from the same clock.
Chaos that lives in the API server is reachable from here too: dropped watches, slow requests.

Not simulated: preemption and priorities, Kueue, pod affinity and topology spread, volumes and
ConfigMap/Secret mounts (a missing Secret is only a scale-runtime annotation), container restarts
(pods are restartPolicy Never as the runner renders them), Indexed Jobs, parallelism beyond what the
arithmetic needs, graceful deletion of pods without finalizers (they go at once, as the fake server
deletes them), node recovery, resource quotas, admission webhooks, real GPU devices.

How it runs: the store calls a listener with every change, in order (the watch history can be short;
this never misses an event). Changes and runtime reports queue up for one worker thread, which feeds
each controller's cache, then lets each sync only what became dirty; timers sit in one heap on the
clock. So every step costs what changed, not the size of the cluster.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from tests.support.apiserver import resources
from tests.support.apiserver.apiserver import FakeKubeServer
from tests.support.apiserver.store import WatchEvent
from tests.support.sim.api import NODES, ClusterApi, Obj
from tests.support.sim.clock import Clock, FakeClock
from tests.support.sim.cronjobs import CronJobController
from tests.support.sim.jobs import JobController
from tests.support.sim.kubelet import Kubelet
from tests.support.sim.lifecycle import NodeLifecycle
from tests.support.sim.nodes import node_object
from tests.support.sim.runtime import PodRuntime
from tests.support.sim.scale import ScaleRuntime
from tests.support.sim.scheduler import Scheduler

WATCHED = ("nodes", "pods", "jobs", "cronjobs")
H100 = "NVIDIA-H100-80GB-HBM3"


class SimulatorError(RuntimeError):
    """A controller of the simulator failed: a bug in the simulator, or a case it does not handle."""


class Simulator:
    def __init__(
        self, server: FakeKubeServer, runtime: PodRuntime | None = None, clock: Clock | None = None
    ) -> None:
        self.server = server
        self.store = server.store
        self.clock: Clock = clock or FakeClock()
        self.runtime: PodRuntime = runtime or ScaleRuntime(self.clock)
        self.api = ClusterApi(self.store)
        self.scheduler = Scheduler(self.api)
        self.kubelet = Kubelet(self.api, self.runtime, self.post)
        self.lifecycle = NodeLifecycle(self.api, self.clock, self.kubelet)
        self.jobs = JobController(self.api, self.clock)
        self.cronjobs = CronJobController(self.api, self.clock)
        self._queue: deque[WatchEvent | Callable[[], None]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        self._nodes = 0

    # --- running ---------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        self.server.set_clock(self.clock.now)
        with self.store.lock:
            self.store.listeners.append(self._listen)
            for plural in WATCHED:
                rt = resources.lookup(plural)
                for obj in self.store.list_objects(rt):
                    namespace = obj["metadata"].get("namespace", "")
                    self._queue.append(
                        WatchEvent(self.store.resource_version, "ADDED", rt, namespace, obj, None)
                    )
        self._thread = threading.Thread(target=self._work, name="cluster-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self.store.lock:
            if self._listen in self.store.listeners:
                self.store.listeners.remove(self._listen)
        self.runtime.close()
        self._raise()

    def _listen(self, event: WatchEvent) -> None:
        if event.rt.plural in WATCHED and not event.rt.group.endswith(".k8s.io"):
            with self._cond:
                self._queue.append(event)
                self._cond.notify_all()

    def post(self, work: Callable[[], None]) -> None:
        """Run work on the simulator's worker (thread-safe; how runtimes report)."""
        with self._cond:
            self._queue.append(work)
            self._cond.notify_all()

    def _timer_due(self) -> bool:
        due = self.clock.next_due()
        return due is not None and due <= self.clock.now()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue and not self._timer_due():
                    due = self.clock.next_due()
                    wait = (
                        None if self.clock.fake or due is None else (due - self.clock.now()).total_seconds()
                    )
                    self._cond.wait(timeout=None if wait is None else min(max(wait, 0.001), 1.0))
                if self._stopping:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                if batch:
                    self._process(batch)
                else:
                    timer = self.clock.pop_due()
                    if timer is not None:
                        timer.callback()
                        self._flush()
            except Exception as error:  # surfaced by settle() and stop()
                self.errors.append(error)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, batch: list[WatchEvent | Callable[[], None]]) -> None:
        for item in batch:
            if isinstance(item, WatchEvent):
                self.scheduler.observe(item)
                self.kubelet.observe(item)
                self.lifecycle.observe(item)
                self.jobs.observe(item)
                self.cronjobs.observe(item)
            else:
                item()
        self._flush()

    def _flush(self) -> None:
        self.scheduler.flush()
        self.jobs.flush()
        self.cronjobs.flush()

    def _raise(self) -> None:
        if self.errors:
            error = self.errors[0]
            raise SimulatorError(f"the cluster simulator failed: {error!r}") from error

    # --- waiting and time ------------------------------------------------------------------------------

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every change so far is processed and no timer is due (real seconds, at most timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy or self._timer_due():
                self._raise()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"the simulator did not settle in {timeout}s ({len(self._queue)} queued)"
                    )
                self._cond.wait(timeout=min(remaining, 0.5))
        self._raise()

    def advance(self, seconds: float) -> None:
        """Move fake time forward, firing each due timer at its own time, in order, and settling between."""
        clock = self._fake()
        target = clock.now() + timedelta(seconds=seconds)
        while True:
            self.settle()
            due = clock.next_due()
            if due is None or due > target:
                break
            self._set_time(due)
        self._set_time(target)
        self.settle()

    def jump(self, seconds: float) -> None:
        """Move fake time forward as if the control plane had been down: nothing happens in between; what
        fell due runs once, at the new time (a CronJob then starts only its most recent missed slot)."""
        clock = self._fake()
        self.settle()
        self._set_time(clock.now() + timedelta(seconds=seconds))
        self.settle()

    def run_until(self, done: Callable[[], bool], *, within: float = 86400.0) -> None:
        """Advance fake time, timer by timer, until done() holds; at most `within` simulated seconds."""
        clock = self._fake()
        limit = clock.now() + timedelta(seconds=within)
        self.settle()
        while not done():
            due = clock.next_due()
            if due is None or due > limit:
                raise TimeoutError(f"not done within {within}s of simulated time (next timer: {due})")
            self._set_time(due)
            self.settle()

    def _fake(self) -> FakeClock:
        if not isinstance(self.clock, FakeClock):
            raise TypeError("only a simulator on a FakeClock can move time")
        return self.clock

    def _set_time(self, moment: Any) -> None:
        with self._cond:
            self._fake().set(moment)
            self._cond.notify_all()

    def call(self, work: Callable[[], None]) -> None:
        """Run work on the worker (where controller state lives) and wait until it and its effects settle."""
        self.post(work)
        self.settle()

    # --- nodes and chaos -------------------------------------------------------------------------------

    def add_nodes(
        self,
        count: int,
        *,
        gpus: int = 8,
        gpu_product: str = H100,
        cpu: str = "64",
        memory: str = "512Gi",
        pods: int = 110,
        labels: dict[str, str] | None = None,
        prefix: str = "gpu-node",
    ) -> list[str]:
        """Register Ready nodes named <prefix>-<n>; returns their names."""
        names = []
        for _ in range(count):
            self._nodes += 1
            name = f"{prefix}-{self._nodes}"
            node = node_object(
                name,
                self._nodes,
                gpus=gpus,
                gpu_product=gpu_product,
                cpu=cpu,
                memory=memory,
                pods=pods,
                labels=labels,
                now=self.api.now_stamp(),
            )
            self.store.create(NODES, "", node)
            names.append(name)
        self.settle()
        return names

    def lose_node(self, name: str) -> None:
        """The node stops responding: NotReady, unreachable taints, its containers gone; its pods are
        evicted when their toleration of the unreachable taint runs out (300s unless they say otherwise)."""
        self.call(lambda: self.lifecycle.lose(name))

    def cordon(self, name: str, unschedulable: bool = True) -> None:
        self.store.patch(NODES, "", name, "merge", {"spec": {"unschedulable": unschedulable or None}})
        self.settle()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        """End every open watch (clients must re-list or resume); the simulator itself is not affected."""
        self.server.drop_watches(abrupt=abrupt)

    def slow_api(self, seconds: float) -> None:
        """Delay every HTTP request by seconds (0 to stop)."""
        self.server.latency = seconds

    # --- reading ---------------------------------------------------------------------------------------

    def pods_of(self, job: str, namespace: str | None = None) -> list[Obj]:
        """A Job's pods, oldest first."""
        pods = self.server.pods_of(job, namespace)
        return sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))


@contextmanager
def simulated(
    server: FakeKubeServer, runtime: PodRuntime | None = None, clock: Clock | None = None
) -> Iterator[Simulator]:
    """A started simulator, stopped on exit (errors of its controllers raise there)."""
    simulator = Simulator(server, runtime, clock).start()
    try:
        yield simulator
    finally:
        simulator.stop()
