"""The resource types the fake API server serves, and the discovery documents that describe them.

One `ResourceType` per served resource; adding a type is one entry in `RESOURCES` (plus, when it needs them,
defaults and validation in `rules.py` and table columns in `tables.py`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

SERVER_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    """Field selector labels beyond metadata.name and metadata.namespace (others answer 400, as real)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """The group-qualified plural real messages use: `jobs.batch "x" not found`, `pods "x" not found`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Job.batch "x" is invalid`, `Pod "x" is invalid`."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def field_labels(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.fields


POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",), (), ("status",), ("status.phase",)),
    ResourceType("", "v1", "nodes", "Node", False, ("no",), (), ("status",), ("spec.unschedulable",)),
    ResourceType("", "v1", "pods", "Pod", True, ("po",), ("all",), ("status", "log", "binding"), POD_FIELDS),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True, (), (), (), ("type",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "events", "Event", True, ("ev",), (), (), EVENT_FIELDS),
    ResourceType("batch", "v1", "jobs", "Job", True, (), ("all",), ("status",), ("status.successful",)),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("all",), ("status",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
)


def group_versions() -> dict[str, list[str]]:
    """Served groups (without the core group) and their versions, in first-seen order."""
    found: dict[str, list[str]] = {}
    for rt in RESOURCES:
        if rt.group and rt.version not in found.setdefault(rt.group, []):
            found[rt.group].append(rt.version)
    return found


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def lookup(what: str) -> ResourceType:
    """A type by kind ("Job"), plural ("jobs"), short name ("cj") or qualified plural ("jobs.batch")."""
    lowered = what.lower()
    for rt in RESOURCES:
        if lowered in {rt.singular, rt.plural, rt.qualified, *rt.short_names}:
            return rt
    raise KeyError(f"the fake API server serves no resource {what!r}")


def for_object(obj: dict[str, Any]) -> ResourceType:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    for rt in RESOURCES:
        if (rt.api_version, rt.kind) == (api_version, kind):
            return rt
    raise KeyError(f"the fake API server serves no {api_version}/{kind}")


# --- discovery documents -----------------------------------------------------------------------------


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in group_versions()[group]]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_group_list() -> dict[str, Any]:
    groups = [
        {k: v for k, v in api_group(g).items() if k not in {"kind", "apiVersion"}} for g in group_versions()
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = [rt for rt in RESOURCES if (rt.group, rt.version) == (group, version)]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for rt in served:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(VERBS),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entries.append(entry)
        for sub in rt.subresources:
            verbs = {"log": ["get"], "binding": ["create"]}.get(sub, ["get", "patch", "update"])
            entries.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": verbs,
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


# --- OpenAPI v3, just enough for kubectl ---------------------------------------------------------------
# kubectl create/apply ask the OpenAPI v3 document of a group version whether its PATCH operations take the
# `fieldValidation` query parameter; when they do, kubectl leaves validation to the server instead of
# downloading full schemas. These documents carry only those operations, no schemas: `kubectl explain`
# therefore does not work here.


def openapi_root() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, version in {(rt.group, rt.version) for rt in RESOURCES}:
        prefix = f"apis/{group}/{version}" if group else f"api/{version}"
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={zlib.crc32(prefix.encode()):08X}"}
    return {"paths": dict(sorted(paths.items()))}


def openapi_document(group: str, version: str) -> dict[str, Any] | None:
    served = [rt for rt in RESOURCES if (rt.group, rt.version) == (group, version)]
    if not served:
        return None
    params = [
        {"name": name, "in": "query", "schema": {"type": "string"}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    paths: dict[str, Any] = {}
    for rt in served:
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        scope = f"{base}/namespaces/{{namespace}}" if rt.namespaced else base
        gvk = {"group": group, "version": version, "kind": rt.kind}
        operation = {
            "operationId": f"patch{rt.kind}",
            "parameters": params,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        paths[f"{scope}/{rt.plural}/{{name}}"] = {"patch": operation}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake)", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
