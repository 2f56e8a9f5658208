"""Losing a node, as the node lifecycle and taint eviction controllers handle it.

When a kubelet stops posting status, its node's conditions go Unknown and it gets the
node.kubernetes.io/unreachable taint twice: NoSchedule (the scheduler avoids it) and NoExecute. Each pod
there is evicted once its toleration of that taint runs out (the API server gives every pod 300s; a pod
that does not tolerate it goes at once). Eviction adds DisruptionTarget=True (reason
DeletionByTaintManager) and deletes the pod; as nothing can confirm its containers stopped, the pod ends
Failed with the container's state ContainerStatusUnknown (exit 137), which is how a Job controller sees
it: a disruption, not counted under the usual podFailurePolicy.
"""

from __future__ import annotations

from datetime import timedelta

from tests.support.apiserver.store import WatchEvent, parse_timestamp
from tests.support.sim.api import NODES, PODS, ClusterApi, Obj, key_of, set_condition, terminal
from tests.support.sim.clock import Clock
from tests.support.sim.kubelet import Kubelet
from tests.support.sim.nodes import unknown_conditions
from tests.support.sim.placement import tolerates

CONTROLLER = "taint-eviction-controller"
UNREACHABLE = "node.kubernetes.io/unreachable"
EVICTION_MESSAGE = "Taint manager: deleting due to NoExecute taint"
Key = tuple[str, str]


def eviction_delay(pod: Obj, taint: Obj) -> float | None:
    """Seconds until a pod is evicted for a NoExecute taint: 0 if nothing tolerates it, None if a
    toleration has no tolerationSeconds (never), else the shortest tolerationSeconds."""
    matching = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if tolerates(t, taint)]
    if not matching:
        return 0.0
    seconds = [t.get("tolerationSeconds") for t in matching]
    if any(s is None for s in seconds):
        return None
    return float(max(0, min(int(s) for s in seconds if s is not None)))


class NodeLifecycle:
    def __init__(self, api: ClusterApi, clock: Clock, kubelet: Kubelet) -> None:
        self.api = api
        self.clock = clock
        self.kubelet = kubelet
        self.on_node: dict[str, dict[Key, Obj]] = {}
        self.unreachable: dict[str, Obj] = {}  # lost node -> its NoExecute taint
        self._due: set[Key] = set()

    def observe(self, event: WatchEvent) -> None:
        if event.rt.plural != "pods":
            return
        pod = event.obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        key = key_of(pod)
        pods = self.on_node.setdefault(node, {})
        if event.type == "DELETED" or terminal(pod):
            pods.pop(key, None)
        else:
            fresh = key not in pods
            pods[key] = pod
            if fresh and node in self.unreachable:
                self._schedule(pod, self.unreachable[node])

    def lose(self, name: str) -> None:
        now = self.api.now_stamp()
        taint = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now}

        def unreachable(node: Obj) -> None:
            node["status"]["conditions"] = unknown_conditions(now)
            taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != UNREACHABLE]
            node["spec"]["taints"] = [
                *taints,
                {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now},
                taint,
            ]

        if self.api.mutate(NODES, ("", name), unreachable) is None:
            raise KeyError(f"no node {name}")
        self.unreachable[name] = taint
        self.kubelet.lose(name)
        for key, pod in sorted(self.on_node.get(name, {}).items()):
            self.api.mutate(PODS, key, lambda current: self._not_ready(current, now))
            self._schedule(pod, taint)

    @staticmethod
    def _not_ready(pod: Obj, now: str) -> None:
        if not terminal(pod):
            set_condition(pod.setdefault("status", {}), "Ready", False, now, "NodeNotReady")

    def _schedule(self, pod: Obj, taint: Obj) -> None:
        delay = eviction_delay(pod, taint)
        if delay is None:
            return
        key = key_of(pod)
        added = parse_timestamp(taint["timeAdded"])
        self.clock.call_at(max(added + timedelta(seconds=delay), self.clock.now()), lambda: self._evict(key))

    def _evict(self, key: Key) -> None:
        now = self.api.now_stamp()

        def failed(pod: Obj) -> None:
            if terminal(pod):
                return
            status = pod.setdefault("status", {})
            set_condition(
                status, "DisruptionTarget", True, now, "DeletionByTaintManager", message=EVICTION_MESSAGE
            )
            set_condition(status, "Ready", False, now, "PodCompleted")
            set_condition(status, "ContainersReady", False, now, "PodCompleted")
            status["phase"] = "Failed"
            for container in status.get("containerStatuses") or []:
                started = ((container.get("state") or {}).get("running") or {}).get("startedAt")
                terminated = {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was terminated",
                    "startedAt": started,
                    "finishedAt": now,
                }
                container.update(ready=False, started=False, state={"terminated": terminated})

        pod = self.api.mutate(PODS, key, failed)
        if pod is None:
            return
        self.api.event(
            pod, "TaintManagerEviction", f"Marking for deletion Pod {key[0]}/{key[1]}", component=CONTROLLER
        )
        self.api.delete(PODS, key)
