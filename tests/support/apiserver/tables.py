"""Server-side printing: the meta.k8s.io Table that `kubectl get` asks for, with the columns of the real
printers for the types a batch runner uses (jobs, pods, cronjobs, events, ...) and NAME/AGE for the rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.support.apiserver.resources import ResourceType
from tests.support.apiserver.selectors import format_selector

Obj = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority (1 = only with -o wide)
Row = list[Any]


def human_duration(seconds: float) -> str:
    """The API server's short duration format (5s, 3m2s, 4h, 2d3h, 3y)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def since(text: str | None, now: datetime) -> str:
    moment = _parse(text)
    return human_duration((now - moment).total_seconds()) if moment else "<unknown>"


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def _true(conditions: dict[str, Obj], kind: str) -> bool:
    return conditions.get(kind, {}).get("status") == "True"


def _containers(pod_spec: Obj) -> tuple[str, str]:
    containers = pod_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def job_status(job: Obj) -> str:
    conditions = _conditions(job)
    for kind in ("Failed", "Complete", "FailureTarget", "SuccessCriteriaMet"):
        if _true(conditions, kind):
            return kind
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if _true(conditions, "Suspended"):
        return "Suspended"
    return "Running"


def _job_row(job: Obj, now: datetime) -> Row:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = _parse(status.get("startTime")), _parse(status.get("completionTime"))
    duration = human_duration(((end or now) - start).total_seconds()) if start else ""
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    age = since(job["metadata"].get("creationTimestamp"), now)
    return [job_status(job), completions, duration, age, names, images, format_selector(spec.get("selector"))]


def pod_status(pod: Obj) -> tuple[str, int, int, int]:
    """The STATUS column of `kubectl get pods` (simplified from the real printer), ready, total, restarts."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        restarts += int(container.get("restartCount", 0))
        state = container.get("state") or {}
        if waiting := state.get("waiting"):
            reason = waiting.get("reason") or reason
        elif terminated := state.get("terminated"):
            if terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Signal:{terminated['signal']}"
            else:
                reason = f"ExitCode:{terminated.get('exitCode', 0)}"
        elif state.get("running") and container.get("ready"):
            running = True
            ready += 1
    if reason == "Completed" and running:
        reason = "Running" if _true(_conditions(pod), "Ready") else "NotReady"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason, ready, total, restarts


def _pod_row(pod: Obj, now: datetime) -> Row:
    reason, ready, total, restarts = pod_status(pod)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    gates = spec.get("readinessGates") or []
    ready_gates = sum(1 for g in gates if _true(_conditions(pod), g.get("conditionType", "")))
    return [
        f"{ready}/{total}",
        reason,
        restarts,
        since(pod["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{ready_gates}/{len(gates)}" if gates else "<none>",
    ]


def _cronjob_row(cronjob: Obj, now: datetime) -> Row:
    spec, status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    last = status.get("lastScheduleTime")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers((job_spec.get("template") or {}).get("spec") or {})
    return [
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "True" if spec.get("suspend") else "False",
        len(status.get("active") or []),
        since(last, now) if last else "<none>",
        since(cronjob["metadata"].get("creationTimestamp"), now),
        names,
        images,
        format_selector(job_spec.get("selector")),
    ]


def _event_row(event: Obj, now: datetime) -> Row:
    involved = event.get("involvedObject") or {}
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    return [
        since(last, now),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        event.get("message", "").strip(),
    ]


def _node_row(node: Obj, now: datetime) -> Row:
    conditions = _conditions(node)
    state = "Ready" if _true(conditions, "Ready") else "NotReady" if "Ready" in conditions else "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = ",".join(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix))) or "<none>"
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [
        state,
        roles,
        since(node["metadata"].get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
    ]


def _age(obj: Obj, now: datetime) -> str:
    return since(obj["metadata"].get("creationTimestamp"), now)


PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, datetime], Row]]] = {
    "jobs": (
        [
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _job_row,
    ),
    "pods": (
        [
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "cronjobs": (
        [
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _cronjob_row,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event_row,
    ),
    "nodes": (
        [("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0), ("Version", "string", 0)],
        _node_row,
    ),
    "namespaces": (
        [("Status", "string", 0), ("Age", "string", 0)],
        lambda o, now: [(o.get("status") or {}).get("phase", ""), _age(o, now)],
    ),
    "configmaps": (
        [("Data", "integer", 0), ("Age", "string", 0)],
        lambda o, now: [len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o, now)],
    ),
    "secrets": (
        [("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
        lambda o, now: [o.get("type", ""), len(o.get("data") or {}), _age(o, now)],
    ),
    "serviceaccounts": (
        [("Secrets", "integer", 0), ("Age", "string", 0)],
        lambda o, now: [len(o.get("secrets") or []), _age(o, now)],
    ),
}


def partial_metadata(obj: Obj, version: str = "v1") -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj["metadata"],
    }


def table(
    rt: ResourceType,
    objects: list[Obj],
    now: datetime,
    *,
    version: str = "v1",
    include_object: str = "Metadata",
    list_meta: Obj | None = None,
) -> Obj:
    columns, printer = PRINTERS.get(rt.plural, ([("Age", "string", 0)], lambda o, n: [_age(o, n)]))
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name of the object",
            "priority": 0,
        }
    ]
    definitions += [
        {"name": name, "type": kind, "format": "", "description": name, "priority": priority}
        for name, kind, priority in columns
    ]
    if rt.plural == "events":
        definitions.pop(0)  # events print LAST SEEN first and no NAME
    rows = []
    for obj in objects:
        cells = printer(obj, now)
        if rt.plural != "events":
            cells = [obj["metadata"]["name"], *cells]
        row: Obj = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, version)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta or {},
        "columnDefinitions": definitions,
        "rows": rows,
    }
