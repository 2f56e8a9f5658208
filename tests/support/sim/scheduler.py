"""The default-scheduler: binds pending pods to nodes, or says why it cannot.

State is incremental: each node's used resources change as pods bind and end (terminal pods free their
requests, as the real scheduler's cache drops them), and pending pods wait in FIFO queues per `Shape`.
A round tries each queue from its head and stops at the first pod that does not fit (its queue-mates
would not fit either), so a finished pod costs O(shapes x nodes), never O(pending pods).

A pod that does not fit gets PodScheduled=False/Unschedulable with kube-scheduler's message and one
Warning FailedScheduling event, again only when that message changes. Binding writes spec.nodeName and
PodScheduled=True and records the Scheduled event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.support.apiserver.store import WatchEvent
from tests.support.sim.api import PODS, ClusterApi, Obj, key_of, set_condition, terminal
from tests.support.sim.placement import NodeState, Shape, choose

SCHEDULER = "default-scheduler"
PodKey = tuple[str, str]


@dataclass
class _Queue:
    pods: dict[PodKey, Obj] = field(default_factory=dict)  # insertion order: FIFO
    message: str = ""
    told: dict[PodKey, str] = field(default_factory=dict)  # the message each pod was last given


class Scheduler:
    def __init__(self, api: ClusterApi) -> None:
        self.api = api
        self.nodes: dict[str, NodeState] = {}
        self.queues: dict[Shape, _Queue] = {}
        self.shape_of: dict[PodKey, Shape] = {}
        self.bound: dict[PodKey, tuple[str, Counter[str]]] = {}
        self._dirty: set[Shape] = set()
        self._everything = False  # nodes changed: every queue again, every message again

    # --- following the store ---------------------------------------------------------------------------

    def observe(self, event: WatchEvent) -> None:
        if event.rt.plural == "nodes":
            self._observe_node(event)
        elif event.rt.plural == "pods":
            self._observe_pod(event)

    def _observe_node(self, event: WatchEvent) -> None:
        name = event.obj["metadata"]["name"]
        old = self.nodes.pop(name, None)
        if event.type != "DELETED":
            state = NodeState.of(event.obj)
            if old is not None:
                state.used = old.used
            self.nodes[name] = state
        self._everything = True

    def _observe_pod(self, event: WatchEvent) -> None:
        pod = event.obj
        key = key_of(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        gone = event.type == "DELETED" or terminal(pod)
        if key in self.bound and (gone or not node):
            self._release(key)
        if gone:
            self._unqueue(key)
            return
        if node:
            self._unqueue(key)
            if key not in self.bound:
                self._account(key, node, pod)
            return
        if spec.get("schedulerName", SCHEDULER) != SCHEDULER or pod["metadata"].get("deletionTimestamp"):
            self._unqueue(key)
            return
        shape = self.shape_of.get(key)
        if shape is None:
            shape = Shape.of(spec)
            self.shape_of[key] = shape
            self.queues.setdefault(shape, _Queue()).pods[key] = pod
            self._dirty.add(shape)
        else:
            self.queues[shape].pods[key] = pod

    def _account(self, key: PodKey, node: str, pod: Obj) -> None:
        requests = Counter(dict(Shape.of(pod.get("spec") or {}).requests))
        self.bound[key] = (node, requests)
        if node in self.nodes:
            self.nodes[node].used.update(requests)

    def _release(self, key: PodKey) -> None:
        node, requests = self.bound.pop(key)
        if node in self.nodes:
            self.nodes[node].used.subtract(requests)
        self._dirty.update(self.queues)  # room freed: every queue may move

    def _unqueue(self, key: PodKey) -> None:
        shape = self.shape_of.pop(key, None)
        if shape is None:
            return
        queue = self.queues[shape]
        queue.pods.pop(key, None)
        queue.told.pop(key, None)
        if not queue.pods:
            del self.queues[shape]
            self._dirty.discard(shape)

    # --- scheduling ------------------------------------------------------------------------------------

    def flush(self) -> None:
        shapes = list(self.queues) if self._everything else [s for s in self.queues if s in self._dirty]
        retell = self._everything
        self._everything = False
        self._dirty.clear()
        for shape in shapes:
            self._schedule(shape, retell)

    def _schedule(self, shape: Shape, retell: bool) -> None:
        queue = self.queues.get(shape)
        while queue is not None and queue.pods:
            key, pod = next(iter(queue.pods.items()))
            node, message = choose(self.nodes.values(), shape)
            if node is None:
                if retell or message != queue.message:
                    queue.told.clear()
                queue.message = message
                for waiting_key, waiting in list(queue.pods.items()):
                    if queue.told.get(waiting_key) != message:
                        self._unschedulable(waiting_key, waiting, message)
                        queue.told[waiting_key] = message
                return
            self._bind(key, pod, node)
            queue = self.queues.get(shape)

    def _bind(self, key: PodKey, pod: Obj, node: NodeState) -> None:
        now = self.api.now_stamp()

        def bind(current: Obj) -> None:
            current["spec"]["nodeName"] = node.name
            set_condition(current.setdefault("status", {}), "PodScheduled", True, now)

        self._unqueue(key)
        written = self.api.mutate(PODS, key, bind)
        if written is None:
            return
        self._account(key, node.name, written)
        self.api.event(
            written,
            "Scheduled",
            f"Successfully assigned {key[0]}/{key[1]} to {node.name}",
            component=SCHEDULER,
        )

    def _unschedulable(self, key: PodKey, pod: Obj, message: str) -> None:
        now = self.api.now_stamp()

        def mark(current: Obj) -> None:
            if not current["spec"].get("nodeName"):
                set_condition(
                    current.setdefault("status", {}),
                    "PodScheduled",
                    False,
                    now,
                    "Unschedulable",
                    message=message,
                )

        written = self.api.mutate(PODS, key, mark)
        if written is not None and not written["spec"].get("nodeName"):
            self.api.event(written, "FailedScheduling", message, warning=True, component=SCHEDULER)
