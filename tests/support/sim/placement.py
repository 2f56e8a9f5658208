"""Pure scheduling decisions: what a pod asks for, which nodes pass kube-scheduler's filters, and the
FailedScheduling message when none does.

The filters run in kube-scheduler's default order and, like it, a node is reported under the first one it
fails (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit), except that NodeResourcesFit
lists every insufficient resource. The message is built as the scheduler's FitError does: the counted
reasons sorted as strings, then the preemption plugin's verdict ("No preemption victims found for
incoming pod" where more room could help, "Preemption is not helpful for scheduling" where it cannot;
no pod here has a priority that could preempt another). runner.backends.kubernetes.pure.status parses
exactly this.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.apiserver.rules import parse_quantity

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"


def quantity(name: str, value: Any) -> int:
    """A resource quantity as an integer: CPU in millicores, everything else in whole units (bytes)."""
    parsed = parse_quantity(value)
    if parsed is None:
        return 0
    return math.ceil(parsed * 1000) if name == "cpu" else math.ceil(parsed)


def pod_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """What a pod needs on a node: the sum of its containers' requests (the API server copies limits into
    missing requests), at least the largest init container's, plus one pod slot."""
    total: Counter[str] = Counter()
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] += quantity(name, value)
    for container in spec.get("initContainers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total[name], quantity(name, value))
    total["pods"] += 1
    return {name: amount for name, amount in total.items() if amount}


@dataclass(frozen=True)
class Shape:
    """Everything the filters look at in a pod. Pods of one shape fit the same nodes, so the scheduler
    queues them together and stops at the first that does not fit."""

    requests: tuple[tuple[str, int], ...]
    node_selector: tuple[tuple[str, str], ...]
    tolerations: tuple[tuple[tuple[str, str], ...], ...]
    node_affinity: str = ""  # the required node affinity's terms as canonical JSON ("" for none)

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Shape:
        tolerations = tuple(
            sorted(
                tuple(sorted((k, str(v)) for k, v in t.items() if v is not None))
                for t in spec.get("tolerations") or []
            )
        )
        required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        ) or {}
        terms = required.get("nodeSelectorTerms") or []
        return cls(
            tuple(sorted(pod_requests(spec).items())),
            tuple(sorted((spec.get("nodeSelector") or {}).items())),
            tolerations,
            json.dumps(terms, sort_keys=True) if terms else "",
        )

    def affinity_matches(self, labels: Mapping[str, str]) -> bool:
        """NodeAffinity's required terms: any term may match; a term needs all of its expressions."""
        if not self.node_affinity:
            return True
        terms = json.loads(self.node_affinity)
        return any(
            all(expression_matches(e, labels) for e in term.get("matchExpressions") or []) for term in terms
        )

    def tolerates(self, taint: Mapping[str, Any]) -> bool:
        return any(tolerates(dict(t), taint) for t in self.tolerations)


def expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One node selector requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against node labels."""
    key, operator = expression["key"], expression["operator"]
    values = list(expression.get("values") or [])
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and labels[key].isdigit():
        bound = int(values[0])
        return int(labels[key]) > bound if operator == "Gt" else int(labels[key]) < bound
    return False


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty matches all), key (empty with Exists matches all), value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


@dataclass
class NodeState:
    """The scheduler's view of one node: what it offers and what bound, unfinished pods use."""

    name: str
    labels: dict[str, str]
    taints: list[Obj]
    unschedulable: bool
    allocatable: dict[str, int]
    used: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, node: Obj) -> NodeState:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        return cls(
            name=node["metadata"]["name"],
            labels=dict(node["metadata"].get("labels") or {}),
            taints=list((node.get("spec") or {}).get("taints") or []),
            unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
            allocatable={name: quantity(name, value) for name, value in allocatable.items()},
        )

    def free(self, resource: str) -> int:
        return self.allocatable.get(resource, 0) - self.used[resource]

    def failures(self, shape: Shape) -> tuple[list[str], bool]:
        """Why the pod cannot go here (empty: it fits) and whether preemption could help."""
        if self.unschedulable:
            return ["node(s) were unschedulable"], False
        for taint in self.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not shape.tolerates(taint):
                return [
                    f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value') or ''}}}"
                ], False
        if any(self.labels.get(key) != value for key, value in shape.node_selector) or not (
            shape.affinity_matches(self.labels)
        ):
            return ["node(s) didn't match Pod's node affinity/selector"], False
        missing = []
        for resource, amount in shape.requests:
            if amount > self.free(resource):
                missing.append("Too many pods" if resource == "pods" else f"Insufficient {resource}")
        return missing, True

    def score(self, shape: Shape) -> float:
        """NodeResourcesFit's default LeastAllocated: the mean free share of what the pod asks for."""
        shares = [
            (self.free(resource) - amount) / self.allocatable[resource]
            for resource, amount in shape.requests
            if resource != "pods" and self.allocatable.get(resource)
        ]
        return sum(shares) / len(shares) if shares else 0.0


def choose(nodes: Iterable[NodeState], shape: Shape) -> tuple[NodeState | None, str]:
    """The node to bind to (best score, then name), or None and the FailedScheduling message."""
    best: NodeState | None = None
    best_key: tuple[float, str] = (0.0, "")
    reasons: Counter[str] = Counter()
    helpful = unhelpful = total = 0
    for node in nodes:
        total += 1
        failed, preemptable = node.failures(shape)
        if not failed:
            key = (-node.score(shape), node.name)
            if best is None or key < best_key:
                best, best_key = node, key
            continue
        reasons.update(failed)
        if preemptable:
            helpful += 1
        else:
            unhelpful += 1
    if best is not None:
        return best, ""
    return None, unschedulable_message(total, reasons, helpful, unhelpful)


def _histogram(counts: Mapping[str, int]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def unschedulable_message(total: int, reasons: Mapping[str, int], helpful: int, unhelpful: int) -> str:
    """kube-scheduler's FitError text, with the preemption plugin's verdict."""
    if total == 0:
        return "no nodes available to schedule pods"
    preemption = {}
    if helpful:
        preemption["No preemption victims found for incoming pod"] = helpful
    if unhelpful:
        preemption["Preemption is not helpful for scheduling"] = unhelpful
    return (
        f"0/{total} nodes are available: {_histogram(reasons)}. "
        f"preemption: 0/{total} nodes are available: {_histogram(preemption)}.."
    )
