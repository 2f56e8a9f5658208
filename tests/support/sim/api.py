"""How the simulated controllers write to the fake API server: straight into its store, in process.

Controllers read from their own caches (fed by the store's change listener) and write here. Every write
is a read-modify-write of the stored object under the store's lock, so a controller never overwrites
what a client (kubectl, the runner) changed in between: it changes only the fields it owns, as a
status update or a patch would.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from tests.support.apiserver import resources
from tests.support.apiserver.objects import event_body
from tests.support.apiserver.store import ApiError, Store, timestamp

Obj = dict[str, Any]

PODS = resources.lookup("pods")
JOBS = resources.lookup("jobs")
CRONJOBS = resources.lookup("cronjobs")
NODES = resources.lookup("nodes")
EVENTS = resources.lookup("events")


def key_of(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def condition(obj: Obj, kind: str) -> Obj | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return None


def is_true(obj: Obj, kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class ClusterApi:
    """The store, as the simulated control plane writes to it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._events = itertools.count(1)

    def now_stamp(self) -> str:
        return timestamp(self.store.clock())

    def mutate(
        self, rt: resources.ResourceType, key: tuple[str, str], change: Callable[[Obj], None]
    ) -> Obj | None:
        """Apply change to the stored object (spec and status, not metadata) and write it; None if gone."""
        with self.store.lock:
            current = self.store.find(rt, *key)
            if current is None:
                return None
            change(current)
            return self.store.write(rt, current)

    def patch_meta(self, rt: resources.ResourceType, key: tuple[str, str], metadata: Obj) -> Obj | None:
        """Merge-patch metadata (finalizers, ...): the path on which a deleting object may go for good."""
        try:
            return self.store.patch(rt, key[0], key[1], "merge", {"metadata": metadata})
        except ApiError as error:
            if error.code == 404:
                return None
            raise

    def create(self, rt: resources.ResourceType, namespace: str, body: Obj) -> Obj:
        return self.store.create(rt, namespace, body)

    def delete(
        self, rt: resources.ResourceType, key: tuple[str, str], propagation: str = "Background"
    ) -> bool:
        """Delete; False when it was already gone."""
        try:
            self.store.delete(rt, key[0], key[1], propagation=propagation)
        except ApiError as error:
            if error.code == 404:
                return False
            raise
        return True

    def event(
        self, involved: Obj, reason: str, message: str, *, warning: bool = False, component: str
    ) -> None:
        """A core/v1 Event about involved, as `kubectl describe` and `kubectl get events` show it."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        body = event_body(
            involved,
            f"{meta['name']}.{next(self._events):016x}",
            reason,
            message,
            type="Warning" if warning else "Normal",
            component=component,
            now=self.now_stamp(),
        )
        try:
            self.store.create(EVENTS, namespace, body)
        except ApiError as error:
            if error.code != 404:  # the namespace is gone: so is the event's subject
                raise


def set_condition(
    status: Obj, kind: str, value: bool, now: str, reason: str | None = None, *, message: str | None = None
) -> bool:
    """Set a condition in status (kept in place; lastTransitionTime moves only when the status flips).
    True when something changed."""
    conditions = status.setdefault("conditions", [])
    state = "True" if value else "False"
    for index, entry in enumerate(conditions):
        if entry.get("type") != kind:
            continue
        updated = copy.deepcopy(entry)
        if updated.get("status") != state:
            updated["lastTransitionTime"] = now
        updated["status"] = state
        for field, text in (("reason", reason), ("message", message)):
            if text:
                updated[field] = text
            else:
                updated.pop(field, None)
        if updated == entry:
            return False
        conditions[index] = updated
        return True
    entry = {"type": kind, "status": state, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    conditions.append(entry)
    return True
