"""The fake API server's state: objects, the global resourceVersion, the watch history, pod logs and the
garbage collector. Everything here is plain dicts behind one lock; the HTTP layer (`apiserver.py`) and the
test helpers both go through it, so what a test sets is what clients read and watch.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.apiserver import resources, rules
from tests.support.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.support.apiserver.resources import ResourceType
from tests.support.apiserver.selectors import Matcher

Obj = dict[str, Any]
Clock = Callable[[], datetime]
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class ApiError(Exception):
    """An error the server answers with a Status object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    group = {"group": rt.group} if rt.group else {}
    return {"name": name, **group, "kind": rt.plural}


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(rt, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def invalid(rt: ResourceType, name: str, causes: list[rules.Cause]) -> ApiError:
    shown = causes[0].render() if len(causes) == 1 else "[" + ", ".join(c.render() for c in causes) + "]"
    details: dict[str, Any] = {"name": name, "kind": rt.kind, "causes": [c.as_dict() for c in causes]}
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {shown}', details)


NAMESPACE_MISMATCH = "the namespace of the provided object does not match the namespace sent on the request"
MODIFIED_MSG = "the object has been modified; please apply your changes to the latest version and try again"


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    rt: ResourceType
    namespace: str
    obj: Obj  # the object after the change (for DELETED: as deleted), with kind and apiVersion
    old: Obj | None  # the object before a MODIFIED


@dataclass
class LogLine:
    time: datetime
    text: str  # with its trailing newline, unless the writer has not finished the line


@dataclass
class _Logs:
    lines: list[LogLine] = field(default_factory=list)


def clone(value: Any) -> Any:
    """A deep copy of a JSON-shaped tree (dicts, lists, scalars), several times faster than copy.deepcopy:
    every write and read of the store copies objects, and at 10,000 Jobs that copying was most of the
    fake control plane's time. Anything else (a tuple, a datetime a test slipped in) goes to deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def clone_obj(obj: Obj) -> Obj:
    """clone of one whole object, typed as one."""
    copied: Obj = clone(obj)
    return copied


def _key(rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
    return (f"{rt.group}/{rt.plural}", namespace, name)


def _spec_of(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in {"metadata", "status", "kind", "apiVersion"}}


def _fields_v1(value: Any) -> Obj:
    """The FieldsV1 set of an object's fields, as server-side apply records them: a key per field
    ("f:name"), list items of objects by their name ("k:{\"name\":\"x\"}"), scalars as {}."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in value.items() if k != "managedFields"}
    if isinstance(value, list):
        found: Obj = {}
        for index, item in enumerate(value):
            name = item.get("name", index) if isinstance(item, dict) else item
            found[f"k:{json.dumps({'name': name}, separators=(',', ':'))}"] = _fields_v1(item)
        return found
    return {}


class Store:
    """Objects by (resource, namespace, name); every write bumps the one global resourceVersion."""

    def __init__(self, *, clock: Clock = utcnow, history: int = 1000) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.gc_enabled = True
        """When False, deletions leave dependents (and foreground owners) until `collect_garbage()`."""
        self.closed = False
        self.watch_epoch = 0
        """Bumped by `drop_watches`: open watches whose epoch is older end."""
        self.abrupt_drop = False
        self.managed_fields = False
        """When True, every write records managedFields (last in metadata, as the API server writes them)."""
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._rv = 0
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history
        self.compacted_rv = 0
        """Watching from a resourceVersion below this answers 410 Gone."""
        self._logs: dict[tuple[str, str, str], _Logs] = {}
        self._collecting = False
        # Indexes, so that a step costs what it touches rather than the size of the cluster (10,000 Jobs):
        self._by_kind: dict[str, dict[tuple[str, str], Obj]] = {}  # group/plural -> (namespace, name) -> obj
        self._by_uid: dict[str, tuple[str, str, str]] = {}  # uid -> key
        self._owned: dict[str, dict[tuple[str, str, str], None]] = {}  # owner uid -> keys of its dependents
        self._gc_candidates: dict[tuple[str, str, str], None] = {}  # may have lost every owner
        self._foreground: dict[tuple[str, str, str], None] = {}  # deleting with foregroundDeletion
        self.listeners: list[Callable[[WatchEvent], None]] = []
        """Called under the lock with every committed change, in order, whatever the history keeps: how an
        in-process controller (the cluster simulator) follows everything without a watch. A listener must
        not block or write; it should only queue the event."""
        for namespace in SYSTEM_NAMESPACES:
            self.create(resources.lookup("namespaces"), "", {"metadata": {"name": namespace}})

    # --- reading -----------------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self.lock:
            found = self._objects.get(_key(rt, namespace, name))
            if found is None:
                raise not_found(rt, name)
            return clone_obj(found)

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        with self.lock:
            found = self._objects.get(_key(rt, namespace, name))
            return clone(found) if found is not None else None

    def list_objects(
        self, rt: ResourceType, namespace: str | None = None, match: Matcher | None = None
    ) -> list[Obj]:
        """Matching objects in key order (namespace, then name), as etcd returns them."""
        return self.list_page(rt, namespace, match)[0]

    def list_page(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        match: Matcher | None = None,
        *,
        after: tuple[str, str] | None = None,
        limit: int = 0,
    ) -> tuple[list[Obj], int]:
        """One page of matching objects in key order, from after (a (namespace, name) excluded) on, at
        most limit (0: all); and how many matching objects remain past the page. Only the page is
        copied: a paginated LIST of 10,000 Jobs then costs one scan per page, not a copy of them all."""
        with self.lock:
            objects = self._by_kind.get(f"{rt.group}/{rt.plural}", {})
            found = [
                obj
                for key, obj in sorted(objects.items())
                if (namespace is None or key[0] == namespace)
                and (after is None or key > after)
                and (match is None or match(obj))
            ]
            page = found[:limit] if limit else found
            return clone(page), len(found) - len(page)

    def history_since(self, rv: int) -> list[WatchEvent]:
        """Events after rv; raises 410 Gone when some of them are no longer retained."""
        with self.lock:
            if rv < self.compacted_rv:
                raise gone(f"too old resource version: {rv} ({self.compacted_rv + 1})")
            newer: list[WatchEvent] = []
            for event in reversed(self._history):
                if event.rv <= rv:
                    break
                newer.append(event)
            return newer[::-1]

    # --- writing -----------------------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, obj: Obj, kind: str, old: Obj | None = None) -> Obj:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        if self.managed_fields and kind != "DELETED":
            meta.pop("managedFields", None)
            meta["managedFields"] = [
                {
                    "manager": "fake-apiserver",
                    "operation": "Update",
                    "apiVersion": obj.get("apiVersion") or rt.api_version,
                    "time": timestamp(self.clock()),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_v1(obj),
                }
            ]
        key = _key(rt, meta.get("namespace", ""), meta["name"])
        self._index(key, self._objects.get(key), None if kind == "DELETED" else obj)
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        if len(self._history) >= self._history_limit:
            self.compacted_rv = self._history.popleft().rv
        event = WatchEvent(self._rv, kind, rt, meta.get("namespace", ""), clone(obj), old)
        self._history.append(event)
        for listener in self.listeners:
            listener(event)
        self.changed.notify_all()
        return clone_obj(obj)

    def _index(self, key: tuple[str, str, str], old: Obj | None, new: Obj | None) -> None:
        """Keep the indexes in step with one object going from old to new (None: absent)."""
        by_kind = self._by_kind.setdefault(key[0], {})
        if new is None:
            by_kind.pop(key[1:], None)
        else:
            by_kind[key[1:]] = new
        old_meta = (old or {}).get("metadata") or {}
        new_meta = (new or {}).get("metadata") or {}
        old_owners = {ref.get("uid") for ref in old_meta.get("ownerReferences") or []}
        new_owners = {ref.get("uid") for ref in new_meta.get("ownerReferences") or []}
        for uid in old_owners - new_owners:
            owned = self._owned.get(uid, {})
            owned.pop(key, None)
            if not owned:
                self._owned.pop(uid, None)
        for uid in new_owners - old_owners:
            self._owned.setdefault(uid, {})[key] = None
        if old_meta.get("uid") and new is None:  # its dependents may have lost their last owner
            self._by_uid.pop(old_meta["uid"], None)
            self._gc_candidates.update(dict.fromkeys(self._owned.get(old_meta["uid"], {})))
        if new_meta.get("uid"):
            self._by_uid[new_meta["uid"]] = key
        if new is not None and any(uid not in self._by_uid for uid in new_owners):
            self._gc_candidates[key] = None
        if new is not None and "foregroundDeletion" in (new_meta.get("finalizers") or []):
            self._foreground[key] = None
        else:
            self._foreground.pop(key, None)

    def _with_type(self, rt: ResourceType, obj: Obj) -> Obj:
        return {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            **{k: v for k, v in obj.items() if k not in {"kind", "apiVersion"}},
        }

    def _check_type(self, rt: ResourceType, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self._objects.get(_key(resources.lookup("namespaces"), "", namespace))
        if ns is None:
            raise not_found(resources.lookup("namespaces"), namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "" is forbidden: unable to create new content in namespace {namespace} because '
                "it is being terminated",
            )

    def create(self, rt: ResourceType, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        with self.lock:
            if not isinstance(body, dict):
                raise bad_request("the body of the request was in an unknown format")
            self._check_type(rt, body)
            obj = self._with_type(rt, clone(body))
            meta = obj.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise bad_request("metadata must be an object")
            if rt.namespaced:
                if meta.get("namespace") not in (None, "", namespace):
                    raise bad_request(NAMESPACE_MISMATCH)
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                prefix = meta.get("generateName")
                if not prefix:
                    raise invalid(
                        rt, "", [rules.required("metadata.name", "name or generateName is required")]
                    )
                for _ in range(10):
                    meta["name"] = prefix + "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(5))
                    if _key(rt, namespace if rt.namespaced else "", meta["name"]) not in self._objects:
                        break
            name = meta["name"]
            causes = rules.name_causes(rt, str(name))
            if causes:
                raise invalid(rt, str(name), causes)
            self._check_namespace(rt, namespace)
            uid = str(uuid.uuid4())
            meta.update(uid=uid, creationTimestamp=timestamp(self.clock()))
            for server_field in (
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
            ):
                meta.pop(server_field, None)
            if "spec" in obj:
                meta["generation"] = 1
            rules.prepare_create(rt, obj, uid)
            rules.default(rt, obj)
            causes = rules.validate(rt, obj)
            if causes:
                raise invalid(rt, name, causes)
            if _key(rt, meta.get("namespace", ""), name) in self._objects:
                raise already_exists(rt, name)
            if dry_run:
                return clone_obj(obj)
            created = self._commit(rt, obj, "ADDED")
            if rt.plural == "namespaces":
                self.create(resources.lookup("serviceaccounts"), name, {"metadata": {"name": "default"}})
            return created

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        with self.lock:
            if not isinstance(body, dict):
                raise bad_request("the body of the request was in an unknown format")
            self._check_type(rt, body)
            current = self._objects.get(_key(rt, namespace, name))
            if current is None:
                raise not_found(rt, name)
            meta = body.get("metadata") or {}
            if meta.get("name", name) != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            if rt.namespaced and meta.get("namespace") not in (None, "", namespace):
                raise bad_request(NAMESPACE_MISMATCH)
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt, name, MODIFIED_MSG)
            return self._replace(rt, current, clone(body), subresource=subresource, dry_run=dry_run)

    def _replace(
        self, rt: ResourceType, current: Obj, body: Obj, *, subresource: str | None, dry_run: bool = False
    ) -> Obj:
        """Store body in place of current, keeping what clients may not change; a no-op writes nothing."""
        old = clone(current)
        if subresource == "status":
            new = clone(current)
            new["status"] = body.get("status", {})
        else:
            new = self._with_type(rt, body)
            new_meta = new.setdefault("metadata", {})
            for kept in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ):
                if kept in old["metadata"]:
                    new_meta[kept] = old["metadata"][kept]
                else:
                    new_meta.pop(kept, None)
            if rt.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if old["metadata"].get("deletionTimestamp"):
                added = set(new_meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    detail = (
                        "no new finalizers can be added if the object is being deleted, found new finalizers "
                    )
                    detail += str(sorted(added))
                    raise invalid(
                        rt, old["metadata"]["name"], [rules.forbidden("metadata.finalizers", detail)]
                    )
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        rules.default(rt, new)
        causes = rules.validate(rt, new, old)
        if causes:
            raise invalid(rt, old["metadata"]["name"], causes)
        if "generation" in old["metadata"] and _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if new == old or dry_run:
            return clone_obj(new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            removed = self._remove(rt, new)
            self.collect_garbage_if_enabled()
            return removed
        return self._commit(rt, new, "MODIFIED", old)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        with self.lock:
            current = self._objects.get(_key(rt, namespace, name))
            if current is None:
                if patch_type == "apply":
                    if not field_manager:
                        raise bad_request("PATCH request with apply type requires fieldManager")
                    return self.create(rt, namespace, body, dry_run=dry_run)
                raise not_found(rt, name)
            try:
                if patch_type == "json":
                    patched = json_patch(current, body)
                elif patch_type == "merge":
                    patched = merge_patch(current, body)
                elif patch_type in {"strategic", "apply"}:
                    if patch_type == "apply" and not field_manager:
                        raise bad_request("PATCH request with apply type requires fieldManager")
                    if patch_type == "apply":
                        body = {k: v for k, v in body.items() if k != "status"} if not subresource else body
                    patched = strategic_merge_patch(current, body)
                else:
                    raise ApiError(
                        415, "UnsupportedMediaType", f"the server does not support patch type {patch_type}"
                    )
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from exc
            if not isinstance(patched, dict):
                raise bad_request("the patch did not produce an object")
            patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
            if patched_rv and patched_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt, name, MODIFIED_MSG)
            meta = patched.get("metadata") or {}
            if meta.get("name") != name:
                raise bad_request(
                    "metadata.name: Invalid value: the name of the object cannot be changed by a patch"
                )
            return self._replace(rt, current, patched, subresource=subresource, dry_run=dry_run)

    def write(self, rt: ResourceType, obj: Obj) -> Obj:
        """Store obj as the new state of an existing object with no strategy or validation, as a controller's
        status writes and the scheduler's binding do; metadata stays the server's. A no-op writes nothing."""
        with self.lock:
            meta = obj["metadata"]
            current = self._objects.get(_key(rt, meta.get("namespace", ""), meta["name"]))
            if current is None:
                raise not_found(rt, meta["name"])
            updated = {**clone(obj), "metadata": clone(current["metadata"])}
            if updated == current:
                return clone_obj(current)
            # The replaced object leaves the store unchanged (stored objects are swapped, never edited):
            # the event can carry it as it is.
            return self._commit(rt, updated, "MODIFIED", current)

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        """Delete for good, with obj as the object's final content (the DELETED event carries it)."""
        meta = obj["metadata"]
        removed = self._commit(rt, clone(obj), "DELETED")
        if rt.plural == "pods":
            for log_key in [k for k in self._logs if k[:2] == (meta["namespace"], meta["name"])]:
                del self._logs[log_key]
        return removed

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete an object; returns it and whether it is gone (False: it waits on finalizers)."""
        with self.lock:
            current = self._objects.get(_key(rt, namespace, name))
            if current is None:
                raise not_found(rt, name)
            meta = current["metadata"]
            for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = (preconditions or {}).get(key)
                if wanted and wanted != meta.get(key):
                    why = f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: "
                    raise conflict(rt, name, why + str(meta.get(key)))
            if dry_run:
                return clone(current), True
            if propagation is None:
                propagation = "Orphan" if rt.plural == "jobs" else "Background"
            if propagation not in {"Orphan", "Background", "Foreground"}:
                raise bad_request(
                    f'propagationPolicy: Unsupported value: "{propagation}": supported values: "Foreground", '
                    '"Background", "Orphan"'
                )
            if rt.plural == "namespaces":
                return self._delete_namespace(current), True
            if propagation == "Orphan":
                self._orphan_dependents(meta["uid"])
            finalizers = list(meta.get("finalizers") or [])
            if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if finalizers:
                if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers"):
                    return clone(current), False
                updated = clone(current)
                updated["metadata"]["finalizers"] = finalizers
                updated["metadata"].setdefault("deletionTimestamp", timestamp(self.clock()))
                updated["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                result = self._commit(rt, updated, "MODIFIED", clone(current))
                self.collect_garbage_if_enabled()
                return result, False
            removed = self._remove(rt, current)
            self.collect_garbage_if_enabled()
            return removed, True

    def _delete_namespace(self, namespace_obj: Obj) -> Obj:
        name = namespace_obj["metadata"]["name"]
        terminating = clone(namespace_obj)
        terminating["metadata"]["deletionTimestamp"] = timestamp(self.clock())
        terminating["status"] = {"phase": "Terminating"}
        self._commit(resources.lookup("namespaces"), terminating, "MODIFIED", clone(namespace_obj))
        for (_, ns, _), obj in list(self._objects.items()):
            if ns == name:
                self._remove(resources.for_object(obj), obj)
        return self._remove(resources.lookup("namespaces"), terminating)

    # --- garbage collection ------------------------------------------------------------------------------

    def _dependents(self, uid: str) -> list[Obj]:
        return [self._objects[key] for key in list(self._owned.get(uid, {})) if key in self._objects]

    def _orphan_dependents(self, uid: str) -> None:
        for dependent in self._dependents(uid):
            updated = clone(dependent)
            refs = [r for r in updated["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if refs:
                updated["metadata"]["ownerReferences"] = refs
            else:
                del updated["metadata"]["ownerReferences"]
            self._commit(resources.for_object(dependent), updated, "MODIFIED", clone(dependent))

    def collect_garbage_if_enabled(self) -> None:
        if self.gc_enabled and not self._collecting:
            self.collect_garbage()

    def collect_garbage(self) -> None:
        """Run the garbage collector until nothing changes: dependents of deleted owners are deleted, and an
        owner deleting in the foreground loses its `foregroundDeletion` finalizer once they are gone."""
        with self.lock:
            self._collecting = True
            try:
                self._collect()
            finally:
                self._collecting = False

    def _collect(self) -> None:
        while self._collect_one():
            pass

    def _collect_one(self) -> bool:
        """One step of the collector; True when it changed something. It looks only at what the indexes
        point to (dependents of deleted owners, owners deleting in the foreground), never at every object."""
        while self._gc_candidates:
            key = next(iter(self._gc_candidates))
            del self._gc_candidates[key]
            obj = self._objects.get(key)
            if obj is None:
                continue
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            if (
                refs
                and not meta.get("deletionTimestamp")
                and all(r.get("uid") not in self._by_uid for r in refs)
            ):
                self.delete(
                    resources.for_object(obj),
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation="Background",
                )
                return True
        for key in list(self._foreground):
            obj = self._objects.get(key)
            if obj is None:
                continue
            meta = obj["metadata"]
            rt = resources.for_object(obj)
            if not meta.get("deletionTimestamp"):
                continue
            dependents = self._dependents(meta["uid"])
            waiting = [d for d in dependents if not d["metadata"].get("deletionTimestamp")]
            for dependent in waiting:
                dep_meta = dependent["metadata"]
                rt_dep = resources.for_object(dependent)
                self.delete(rt_dep, dep_meta.get("namespace", ""), dep_meta["name"], propagation="Foreground")
            if waiting:
                return True
            if dependents:
                continue  # they are deleting, held by their own finalizers
            updated = clone(obj)
            finalizers = [f for f in meta["finalizers"] if f != "foregroundDeletion"]
            if finalizers:
                updated["metadata"]["finalizers"] = finalizers
                self._commit(rt, updated, "MODIFIED", clone(obj))
            else:
                del updated["metadata"]["finalizers"]
                self._remove(rt, updated)
            return True
        return False

    # --- watch support -----------------------------------------------------------------------------------

    def expire_history(self) -> None:
        """Forget every past event: watches from any older resourceVersion now get 410 Gone."""
        with self.lock:
            self._history.clear()
            self.compacted_rv = self._rv
            self.changed.notify_all()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        """End every open watch (and log follow): cleanly, or by cutting the connection."""
        with self.lock:
            self.watch_epoch += 1
            self.abrupt_drop = abrupt
            self.changed.notify_all()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()

    # --- pod logs ----------------------------------------------------------------------------------------

    def append_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Append text to a container's log (default: the pod's first container); followers receive it."""
        with self.lock:
            container = container or self._default_container(namespace, pod)
            log = self._logs.setdefault((namespace, pod, container), _Logs())
            now = self.clock()
            pieces = text.splitlines(keepends=True)
            if pieces and log.lines and not log.lines[-1].text.endswith("\n"):
                log.lines[-1].text += pieces.pop(0)
            log.lines.extend(LogLine(now, piece) for piece in pieces)
            self.changed.notify_all()

    def set_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        with self.lock:
            container = container or self._default_container(namespace, pod)
            self._logs[(namespace, pod, container)] = _Logs()
            self.append_log(namespace, pod, text, container)

    def log_lines(self, namespace: str, pod: str, container: str) -> list[LogLine]:
        with self.lock:
            log = self._logs.get((namespace, pod, container))
            return [LogLine(line.time, line.text) for line in log.lines] if log else []

    def _default_container(self, namespace: str, pod: str) -> str:
        obj = self.get(resources.lookup("pods"), namespace, pod)
        default = (obj["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        return str(default or obj["spec"]["containers"][0]["name"])

    def wait(self, timeout: float) -> None:
        """Wait (holding the lock) for the next change, at most timeout seconds."""
        self.changed.wait(timeout)
