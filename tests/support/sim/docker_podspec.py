"""How the Docker pod runtime reads a pod the way kubelet does: env, volumes, security and resources.

Kept apart from the runtime (docker_runtime.py) so that the rules can be read, and tested, without
an engine: everything here is pure except `write_volumes`, which writes files under a directory it is given.
Nothing here imports docker; `ContainerConfig` is plain data that the runtime hands to `docker create`.

Where kubelet has words for a failure (`secret "x" not found`, `couldn't find key k in Secret ns/x`), these
functions raise `StartFailure` with the same words, so that what the simulated cluster reports reads like a
real one.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.spec.quantities import parse_cpu, parse_memory
from tests.support.apiserver import resources
from tests.support.apiserver.resources import ResourceType

Obj = dict[str, Any]

CONFIG_ERROR = "CreateContainerConfigError"

DEFAULT_KEY_MODE = 0o644
"""configMap and secret volume files, unless defaultMode or an item's mode says otherwise (as Kubernetes)."""


class ObjectKind(Protocol):
    """What a source is asked for: `plural` is "secrets" or "configmaps" (the fake API server's
    ResourceType fits)."""

    @property
    def plural(self) -> str: ...


class ObjectSource(Protocol):
    """Where Secrets and ConfigMaps come from: the fake API server's store (../apiserver/store.py) fits,
    and so does a real API server's (tests/support/nodeagent/source.py). find() answers the object as
    the API's JSON, or None when there is none."""

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None: ...


class StartFailure(Exception):
    """The container cannot run; reason is kubelet's waiting reason, message its words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def config_error(message: str) -> StartFailure:
    return StartFailure(CONFIG_ERROR, message)


# --- the pod and its one container ---------------------------------------------------------------------


def only_container(pod: Obj) -> Obj:
    """The pod's container; the runtime runs pods of exactly one container and no init containers."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if len(containers) != 1 or spec.get("initContainers"):
        raise config_error(
            f"the docker pod runtime runs pods of exactly one container and no init containers; "
            f"this pod has {len(containers)} container(s) and {len(spec.get('initContainers') or [])} "
            "init container(s)"
        )
    container: Obj = containers[0]
    return container


def pod_label(pod: Obj) -> str:
    """kubelet's format.Pod: name_namespace(uid), used in its messages."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def container_name(pod: Obj, container: Obj) -> str:
    """The name dockershim gave a pod's container: k8s_<container>_<pod>_<namespace>_<uid>_<attempt>."""
    meta = pod.get("metadata") or {}
    return f"k8s_{container['name']}_{meta.get('name')}_{meta.get('namespace')}_{meta.get('uid')}_0"


# --- env -------------------------------------------------------------------------------------------------


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, others kept as written, $$ is a literal $."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env.get(name, text[i : end + 1]))
            i = end + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _kind(kind: str) -> tuple[ResourceType, str, str]:
    """(resource type, kubelet's lower-case name for not-found messages, Kind for missing keys)."""
    if kind == "secret":
        return resources.lookup("secrets"), "secret", "Secret"
    return resources.lookup("configmaps"), "configmap", "ConfigMap"


def object_data(obj: Obj, kind: str) -> dict[str, bytes]:
    """A Secret's or ConfigMap's keys as bytes: Secret data is base64 (stringData is plain, as written
    before the API server folds it into data), ConfigMap data is text and binaryData base64."""
    found: dict[str, bytes] = {}
    if kind == "secret":
        found.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        found.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        found.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        found.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
    return found


def _fetch(source: ObjectSource, kind: str, namespace: str, name: str, optional: bool) -> Obj | None:
    rt, word, _ = _kind(kind)
    obj = source.find(rt, namespace, name)
    if obj is None and not optional:
        raise config_error(f'{word} "{name}" not found')
    return obj


def _key_ref(source: ObjectSource, kind: str, namespace: str, ref: Obj) -> str | None:
    """The value of a secretKeyRef / configMapKeyRef; None when it is optional and missing."""
    optional = bool(ref.get("optional"))
    obj = _fetch(source, kind, namespace, ref["name"], optional)
    if obj is None:
        return None
    data = object_data(obj, kind)
    if ref["key"] not in data:
        if optional:
            return None
        raise config_error(f"couldn't find key {ref['key']} in {_kind(kind)[2]} {namespace}/{ref['name']}")
    return data[ref["key"]].decode(errors="replace")


_LABEL_OR_ANNOTATION = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")


def field_value(pod: Obj, path: str, *, node: str, pod_ip: str) -> str:
    """A downward API fieldRef, as kubelet resolves it for env."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if matched := _LABEL_OR_ANNOTATION.fullmatch(path):
        return str((meta.get(matched[1]) or {}).get(matched[2], ""))
    simple: dict[str, Callable[[], Any]] = {
        "metadata.name": lambda: meta.get("name"),
        "metadata.namespace": lambda: meta.get("namespace"),
        "metadata.uid": lambda: meta.get("uid"),
        "spec.nodeName": lambda: spec.get("nodeName") or node,
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName"),
        "status.podIP": lambda: (pod.get("status") or {}).get("podIP") or pod_ip,
        "status.podIPs": lambda: (pod.get("status") or {}).get("podIP") or pod_ip,
        "status.hostIP": lambda: pod_ip,  # host networking: the pod's address is the node's
        "status.hostIPs": lambda: pod_ip,
    }
    if path not in simple:
        raise config_error(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path]() or "")


def resource_value(container: Obj, ref: Obj) -> str:
    """A resourceFieldRef (limits.cpu, requests.memory, ...) with its divisor, rounded up like kubelet.
    Only set values are simulated: kubelet would fall back to the node's allocatable for a missing limit."""
    which, _, resource = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(which) or {}).get(resource)
    if value is None:
        raise config_error(
            f"resourceFieldRef {ref['resource']} is not set, which this runtime cannot simulate"
        )
    if resource == "cpu":
        return str(math.ceil(parse_cpu(value) / parse_cpu(ref.get("divisor") or "1")))
    return str(math.ceil(parse_memory(value) / parse_memory(ref.get("divisor") or "1")))


def resolve_env(pod: Obj, container: Obj, source: ObjectSource, *, node: str, pod_ip: str) -> dict[str, str]:
    """The container's environment: envFrom first, then env in order (later entries win, values may use
    $(NAME) of earlier ones), optional references that are missing left out, as kubelet does."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for entry in container.get("envFrom") or []:
        for kind, ref in (("configmap", entry.get("configMapRef")), ("secret", entry.get("secretRef"))):
            if ref is None:
                continue
            obj = _fetch(source, kind, namespace, ref["name"], bool(ref.get("optional")))
            if obj is not None:
                prefix = entry.get("prefix", "")
                env.update(
                    {prefix + k: v.decode(errors="replace") for k, v in object_data(obj, kind).items()}
                )
    for var in container.get("env") or []:
        source_ref = var.get("valueFrom")
        value: str | None
        if source_ref is None:
            value = expand(str(var.get("value", "")), env)
        elif "secretKeyRef" in source_ref:
            value = _key_ref(source, "secret", namespace, source_ref["secretKeyRef"])
        elif "configMapKeyRef" in source_ref:
            value = _key_ref(source, "configmap", namespace, source_ref["configMapKeyRef"])
        elif "fieldRef" in source_ref:
            value = field_value(pod, source_ref["fieldRef"]["fieldPath"], node=node, pod_ip=pod_ip)
        elif "resourceFieldRef" in source_ref:
            value = resource_value(container, source_ref["resourceFieldRef"])
        else:
            raise config_error(f"env {var['name']}: unsupported valueFrom {sorted(source_ref)}")
        if value is not None:
            env[var["name"]] = value
    return env


# --- volumes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostVolume:
    path: Path
    read_only: bool


@dataclass(frozen=True)
class Bind:
    source: str
    target: str
    read_only: bool


def key_files(data: Mapping[str, bytes], volume: Obj, kind: str) -> dict[str, tuple[bytes, int]]:
    """path -> (content, mode) for a configMap or secret volume: every key, or only `items` (key, path,
    mode), modes from defaultMode (0644 unless set)."""
    default_mode = volume.get("defaultMode", DEFAULT_KEY_MODE)
    items = volume.get("items")
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            if volume.get("optional"):
                continue
            what = {"configmap": "configmap references non-existent config key"}.get(
                kind, "references non-existent secret key"
            )
            raise config_error(f"{what}: {item['key']}")
        files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return files


def _own(path: Path, fs_group: int | None, extra_mode: int) -> None:
    """Like kubelet's SetVolumeOwnership: the pod's fsGroup owns the volume's files and may read them.
    Without the right to chown (not root), the files keep their owner."""
    if fs_group is None:
        return
    try:
        os.chown(path, -1, fs_group)
    except PermissionError:
        return
    path.chmod(path.stat().st_mode | extra_mode)


def _write_keys(directory: Path, files: Mapping[str, tuple[bytes, int]], fs_group: int | None) -> None:
    directory.mkdir(mode=0o755)
    _own(directory, fs_group, 0o2050)
    for relative, (content, mode) in files.items():
        target = directory / relative
        if not target.resolve().is_relative_to(directory.resolve()):
            raise config_error(f"volume item path {relative!r} leaves the volume")
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        _own(target, fs_group, 0o040)


def write_volumes(pod: Obj, source: ObjectSource, root: Path) -> dict[str, HostVolume]:
    """Make each of the pod's volumes a directory under root (or, for hostPath, the host's directory).

    emptyDir: an empty directory anyone may write (kubelet makes them 0777; medium Memory is a directory
    too). configMap, secret: the keys as files, read-only to the container. hostPath: the path itself.
    projected (what the ServiceAccount admission adds for a pod's API token): its configMap, secret and
    downwardAPI (fieldRef) items, and a serviceAccountToken from a source that can issue one (a
    `TokenSource`: a real API server's TokenRequest). Other kinds (persistentVolumeClaim, downwardAPI on
    its own, ...) are not simulated and fail the pod.
    A missing configMap or secret fails it with kubelet's MountVolume.SetUp words; the real kubelet would
    keep the pod ContainerCreating and retry, which a test would only ever see as a pod that never starts.
    """
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    found: dict[str, HostVolume] = {}
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        directory = root / name
        if "emptyDir" in volume:
            directory.mkdir()
            directory.chmod(0o777)
            found[name] = HostVolume(directory, read_only=False)
        elif "configMap" in volume or "secret" in volume:
            kind = "configmap" if "configMap" in volume else "secret"
            ref = volume["configMap"] if kind == "configmap" else volume["secret"]
            object_name = ref["name"] if kind == "configmap" else ref["secretName"]
            try:
                obj = _fetch(source, kind, namespace, object_name, bool(ref.get("optional")))
                files = key_files(object_data(obj, kind) if obj else {}, ref, kind)
            except StartFailure as failure:
                message = f'MountVolume.SetUp failed for volume "{name}" : {failure.message}'
                raise config_error(message) from failure
            _write_keys(directory, files, fs_group)
            found[name] = HostVolume(directory, read_only=True)
        elif "projected" in volume:
            try:
                files = projected_files(pod, volume["projected"], source)
            except StartFailure as failure:
                message = f'MountVolume.SetUp failed for volume "{name}" : {failure.message}'
                raise config_error(message) from failure
            _write_keys(directory, files, fs_group)
            found[name] = HostVolume(directory, read_only=True)
        elif "hostPath" in volume:
            path = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            found[name] = HostVolume(path, read_only=False)
        else:
            kinds = sorted(set(volume) - {"name"})
            raise config_error(f'volume "{name}": {"/".join(kinds)} volumes are not simulated')
    return found


class TokenSource(Protocol):
    """A source that also issues service account tokens (a real API server's TokenRequest)."""

    def service_account_token(self, pod: Obj, audience: str | None, expiration_seconds: int) -> str: ...


def projected_files(pod: Obj, projected: Obj, source: ObjectSource) -> dict[str, tuple[bytes, int]]:
    """path -> (content, mode) of a projected volume: each source's files, in order."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    default_mode = projected.get("defaultMode", DEFAULT_KEY_MODE)
    files: dict[str, tuple[bytes, int]] = {}
    for entry in projected.get("sources") or []:
        if "configMap" in entry or "secret" in entry:
            kind = "configmap" if "configMap" in entry else "secret"
            ref = entry["configMap"] if kind == "configmap" else entry["secret"]
            obj = _fetch(source, kind, namespace, ref["name"], bool(ref.get("optional")))
            data = object_data(obj, kind) if obj else {}
            files.update(key_files(data, {**ref, "defaultMode": default_mode}, kind))
        elif "downwardAPI" in entry:
            for item in entry["downwardAPI"].get("items") or []:
                if "fieldRef" not in item:
                    raise config_error(f"downwardAPI item {item.get('path')!r}: only fieldRef is simulated")
                node = (pod.get("spec") or {}).get("nodeName") or ""
                value = field_value(pod, item["fieldRef"]["fieldPath"], node=node, pod_ip="")
                files[item["path"]] = (value.encode(), item.get("mode", default_mode))
        elif "serviceAccountToken" in entry:
            token = entry["serviceAccountToken"]
            issue = getattr(source, "service_account_token", None)
            if issue is None:
                raise config_error("this object source cannot issue service account tokens")
            expiration = int(token.get("expirationSeconds") or 3600)
            value = issue(pod, token.get("audience"), expiration)
            files[token["path"]] = (str(value).encode(), default_mode)
        else:
            kinds = sorted(set(entry))
            raise config_error(f"projected {'/'.join(kinds)} sources are not simulated")
    return files


def binds(container: Obj, volumes: Mapping[str, HostVolume]) -> list[Bind]:
    """The container's volumeMounts as bind mounts (subPath directories made on the way, as kubelet does)."""
    found: list[Bind] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise config_error(f"volumeMount {mount['name']!r}: the pod has no such volume")
        source = volume.path
        if sub_path := mount.get("subPath"):
            source = volume.path / sub_path
            if not source.exists() and not volume.read_only:
                source.mkdir(parents=True, mode=0o777)
        read_only = volume.read_only or bool(mount.get("readOnly"))
        found.append(Bind(str(source), mount["mountPath"], read_only))
    return found


# --- security, resources, command ------------------------------------------------------------------------


def _security(pod: Obj, container: Obj) -> tuple[Obj, Obj]:
    return (pod.get("spec") or {}).get("securityContext") or {}, container.get("securityContext") or {}


def check_non_root(pod: Obj, container: Obj, image_user: str) -> None:
    """runAsNonRoot, with kubelet's words: the effective user must be numeric and not 0."""
    pod_context, context = _security(pod, container)
    if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        return
    who = f'(pod: "{pod_label(pod)}", container: {container["name"]})'
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    if uid is not None:
        if uid == 0:
            raise config_error(f"container's runAsUser breaks non-root policy {who}")
        return
    user = image_user.partition(":")[0]
    if not user.isdigit() and user not in ("", "root"):
        raise config_error(
            f"container has runAsNonRoot and image has non-numeric user ({user}), "
            f"cannot verify user is non-root {who}"
        )
    if user in ("", "root") or int(user) == 0:
        raise config_error(f"container has runAsNonRoot and image will run as root {who}")


@dataclass(frozen=True)
class ContainerConfig:
    """What `docker create` gets, apart from the image, name, labels and mounts (see the runtime)."""

    environment: dict[str, str]
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    working_dir: str | None = None
    user: str | None = None
    group_add: list[str] = field(default_factory=list)
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    mem_limit: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None

    def docker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker-py's containers.create; unset ones left out (image defaults)."""
        kwargs: dict[str, Any] = {
            "environment": self.environment,
            "read_only": self.read_only,
            "privileged": self.privileged,
        }
        optional = {
            "entrypoint": self.entrypoint,
            "command": self.command,
            "working_dir": self.working_dir,
            "user": self.user,
            "group_add": self.group_add,
            "cap_add": self.cap_add,
            "cap_drop": self.cap_drop,
            "security_opt": self.security_opt,
            "nano_cpus": self.nano_cpus,
            "cpu_shares": self.cpu_shares,
        }
        kwargs.update({key: value for key, value in optional.items() if value})
        if self.mem_limit:
            # no swap, as on a Kubernetes node: over the limit means the OOM killer
            kwargs.update(mem_limit=self.mem_limit, memswap_limit=self.mem_limit)
        return kwargs


def container_config(pod: Obj, container: Obj, env: dict[str, str]) -> ContainerConfig:
    """command/args with Kubernetes semantics, securityContext (container over pod), and resources.

    command replaces the image's ENTRYPOINT and drops its CMD; args alone replace only CMD. cpu and memory
    limits become CFS quota and a memory limit without swap, cpu requests CPU shares (as kubelet sets
    them). nvidia.com/gpu (and any other extended resource) is ignored: no GPU can be given to a container
    here, so pods that ask for GPUs run on CPU; the simulated scheduler still accounts for them.
    """
    pod_context, context = _security(pod, container)
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    gid = context.get("runAsGroup", pod_context.get("runAsGroup"))
    groups = [*pod_context.get("supplementalGroups", [])]
    if pod_context.get("fsGroup") is not None:
        groups.append(pod_context["fsGroup"])
    capabilities = context.get("capabilities") or {}
    security_opt = []
    if context.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile")) or {}
    if seccomp.get("type") == "Unconfined":
        security_opt.append("seccomp=unconfined")
    limits = (container.get("resources") or {}).get("limits") or {}
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu_request = requests.get("cpu", limits.get("cpu"))
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    return ContainerConfig(
        environment=env,
        entrypoint=command or None,
        command=args or None,
        working_dir=container.get("workingDir"),
        user=None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid)),
        group_add=[str(group) for group in groups],
        read_only=bool(context.get("readOnlyRootFilesystem")),
        privileged=bool(context.get("privileged")),
        cap_add=list(capabilities.get("add") or []),
        cap_drop=list(capabilities.get("drop") or []),
        security_opt=security_opt,
        mem_limit=parse_memory(limits["memory"]) if "memory" in limits else None,
        nano_cpus=parse_cpu(limits["cpu"]) * 1_000_000 if "cpu" in limits else None,
        cpu_shares=max(2, parse_cpu(cpu_request) * 1024 // 1000) if cpu_request is not None else None,
    )


def pull_policy(container: Obj) -> str:
    """imagePullPolicy, or Kubernetes' default: Always for :latest or no tag, IfNotPresent otherwise."""
    if policy := container.get("imagePullPolicy"):
        return str(policy)
    image = str(container["image"])
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"
