"""The pod of a run, for a run's Job and a CronJob's jobTemplate alike. Pure.

What the job's pod looks like::

    container "job"   the job image, `python -I -m runner.agent -- <spec.command>`, as UID/GID 1000,
                      restricted Pod Security (non-root, no privilege escalation, no capabilities,
                      RuntimeDefault seccomp); env: the manifest's (its secretKeyRef entries by
                      reference), RUNNER_INPUT_<NAME>, the agent's settings (RUNNER_STORE,
                      RUNNER_JOB, ...) and the store's credentials by reference to a Secret, never
                      as values
    volumes           outputs (emptyDir at spec.outputs.path), the manifest ConfigMap read-only at
                      /etc/runner/job.yaml (RUNNER_MANIFEST), /tmp (emptyDir), one volume per input: an
                      emptyDir (the agent fetches s3:// inputs into it, RUNNER_INPUTS) or a pvc://
                      claim, read-only
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from runner.render.gpus import gpu_placement
from runner.render.kubernetes.conventions import (
    AGENT,
    BACKEND,
    CONTAINER,
    GPU_RESOURCE,
    JOB_NAME_LABEL,
    MANIFEST_DIR,
    MANIFEST_PATH,
    STORE_SECRET_KEYS,
    TMP,
    UID,
    UPLOAD_SECONDS,
    WORKDIR,
)
from runner.render.kubernetes.target import Checked
from runner.render.kubernetes.workers import addresses_env, container_port
from runner.spec import JobManifest
from runner.spec.env import EnvFrom
from runner.spec.model import input_kind, parse_pvc
from runner.spec.quantities import format_cpu, format_memory


def pod_spec(checked: Checked, *, config_map: str, run_id: str | None) -> dict[str, Any]:
    """The pod that runs the agent and the manifest's command, mounting the manifest from config_map.
    run_id None: a schedule's run, whose id is its Job's name (run_id_field_path)."""
    manifest, target = checked.manifest, checked.target
    spec = manifest.spec
    outputs, input_paths = checked.outputs, checked.input_paths
    options = spec.kubernetes
    gpus = spec.resources.gpu
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # On SIGTERM (cancel, deadline, eviction) the agent gives the command RUNNER_GRACE seconds,
        # kills it, then collects outputs and logs into the store: the kubelet must wait for both.
        "terminationGracePeriodSeconds": math.ceil(target.grace) + UPLOAD_SECONDS,
    }
    if options.service_account is not None:
        pod["serviceAccountName"] = options.service_account
    else:
        # The job does not talk to the Kubernetes API; a named service account decides for itself.
        pod["automountServiceAccountToken"] = False
    if options.priority_class is not None:
        pod["priorityClassName"] = options.priority_class
    # No Service variables: they mean nothing to a batch job, and a Service named "runner" would
    # inject RUNNER_* variables.
    pod["enableServiceLinks"] = False
    if spec.workers > 1 and run_id is not None:
        # The headless Service named after the run (workers.py): <job>-<index>.<run id> resolves.
        pod["subdomain"] = run_id
    if spec.resources.gpu_type is not None:
        pod.update(gpu_placement(spec.resources.gpu_type))
    if gpus:
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    pod["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = [
        {"name": "manifest", "mountPath": MANIFEST_DIR, "readOnly": True},
        {"name": "outputs", "mountPath": outputs},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "manifest", "configMap": {"name": config_map}},
        {"name": "outputs", "emptyDir": {}},
    ]
    if TMP not in (outputs, *input_paths):
        mounts.append({"name": "tmp", "mountPath": TMP})
        volumes.append({"name": "tmp", "emptyDir": {}})
    for index, (item, path) in enumerate(zip(spec.inputs, input_paths, strict=True)):
        mount, volume = _input_volume(f"input-{index}", path, checked.input_sources.get(item.name, ""))
        mounts.append(mount)
        volumes.append(volume)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": target.image,
        "imagePullPolicy": "IfNotPresent",  # job images are tagged by content hash
        # The agent explicitly, then the manifest's command (the image's CMD is the same command).
        "command": list(AGENT),
        "args": [_literal(argument) for argument in spec.command],
        "workingDir": WORKDIR,
        "env": _environment(checked, run_id),
    }
    if spec.workers > 1:
        container["ports"] = [container_port()]
    resources = _resources(manifest)
    if resources:
        container["resources"] = resources
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        # Jobs write where they please (~/.keras, ~/.cache, matplotlib's config, their own
        # directory), as under the other backends: the root filesystem stays writable.
        "readOnlyRootFilesystem": False,
    }
    # Parents before what is mounted inside them (outputs at /tmp/out after /tmp), whatever the
    # container runtime does about the order.
    container["volumeMounts"] = sorted(mounts, key=lambda mount: mount["mountPath"].count("/"))
    # A pod that fails before the agent says anything still shows its last output in kubectl describe.
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return pod


def _input_volume(name: str, path: str, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An input's mount and volume: a pvc:// claim read-only (its subpath as the mount's subPath), else
    an empty directory the agent fetches into (s3://, RUNNER_INPUTS) or the job fills itself."""
    mount: dict[str, Any] = {"name": name, "mountPath": path}
    if input_kind(source) != "pvc":
        return mount, {"name": name, "emptyDir": {}}
    claim, subpath = parse_pvc(source)
    mount["readOnly"] = True
    if subpath is not None:
        mount["subPath"] = subpath
    return mount, {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}


def fetched_inputs(checked: Checked) -> str | None:
    """RUNNER_INPUTS: the s3:// inputs the agent fetches into their paths, as JSON; None when none."""
    fetched = {
        item.name: {"source": source, "path": path}
        for item, path in zip(checked.manifest.spec.inputs, checked.input_paths, strict=True)
        if input_kind(source := checked.input_sources.get(item.name, "")) == "s3"
    }
    return json.dumps(fetched, sort_keys=True, separators=(",", ":")) if fetched else None


def _environment(checked: Checked, run_id: str | None) -> list[dict[str, Any]]:
    """The job container's env, in order: the manifest's, the inputs', CUDA's, the store's, the agent's."""
    spec = checked.manifest.spec
    env = _manifest_env(spec.env)
    env += [
        {"name": item.env_name, "value": _literal(path)}
        for item, path in zip(spec.inputs, checked.input_paths, strict=True)
    ]
    fetched = fetched_inputs(checked)
    if fetched is not None:  # the agent downloads these before the command starts
        env.append({"name": "RUNNER_INPUTS", "value": _literal(fetched)})
    if not spec.resources.gpu:
        # No GPUs asked for, none seen, as under the process backend: CUDA hides them, and the
        # NVIDIA runtime (where it is the node's default) does not inject any. The manifest may say
        # otherwise.
        for name, value in (("CUDA_VISIBLE_DEVICES", ""), ("NVIDIA_VISIBLE_DEVICES", "void")):
            if name not in spec.env:
                env.append({"name": name, "value": value})
    if checked.target.store_secret is not None:
        env += _store_credentials(checked.target.store_secret)
    return env + _agent_env(checked, run_id)


def _manifest_env(entries: Mapping[str, str | EnvFrom]) -> list[dict[str, Any]]:
    """spec.env: values as literals, secrets by reference (fromEnv and fromFile are refused by check_env)."""
    env: list[dict[str, Any]] = []
    for name, entry in entries.items():
        if isinstance(entry, str):
            env.append({"name": name, "value": _literal(entry)})
        elif entry.secret_key_ref is not None:
            secret = {"name": entry.secret_key_ref.name, "key": entry.secret_key_ref.key}
            env.append({"name": name, "valueFrom": {"secretKeyRef": secret}})
    return env


def _store_credentials(store_secret: str) -> list[dict[str, Any]]:
    """The store's credentials, each a key of the store's Secret (the optional ones may be missing)."""
    env: list[dict[str, Any]] = []
    for name, optional in STORE_SECRET_KEYS:
        reference: dict[str, Any] = {"name": store_secret, "key": name}
        if optional:
            reference["optional"] = True
        env.append({"name": name, "valueFrom": {"secretKeyRef": reference}})
    return env


def _agent_env(checked: Checked, run_id: str | None) -> list[dict[str, Any]]:
    """The agent's settings (runner.agent.settings). RUNNER_ATTEMPT is left out: Kubernetes gives a
    Job's pods no attempt number."""
    manifest, target = checked.manifest, checked.target
    agent: dict[str, str | None] = {
        "RUNNER_STORE": target.store_url,
        "RUNNER_JOB": manifest.name,
        "RUNNER_RUN_ID": run_id,
        "RUNNER_OUTPUTS": checked.outputs,
        "RUNNER_MANIFEST": MANIFEST_PATH,
        "RUNNER_GRACE": f"{target.grace:g}",
        "RUNNER_BACKEND": BACKEND,
        "RUNNER_IMAGE": target.image,  # recorded in run.json: which image trained the model
    }
    if manifest.spec.retention is not None:
        # Which of the job's runs the store keeps: the agent prunes once its own run is complete.
        agent["RUNNER_RETENTION"] = manifest.spec.retention.to_env()
    notify = manifest.spec.notify
    if notify is not None:  # the agent posts when the run ends; the URL comes from a Secret (check_notify)
        agent["RUNNER_NOTIFY_ON"] = notify.to_env()
        agent["RUNNER_MAX_ATTEMPTS"] = str(manifest.spec.retries + 1)
    env: list[dict[str, Any]] = []
    for variable, setting in agent.items():
        if setting is not None:
            env.append({"name": variable, "value": _literal(setting)})
        else:  # RUNNER_RUN_ID of a schedule's run: its Job's name, known once the CronJob creates it
            env.append({"name": variable, "valueFrom": {"fieldRef": {"fieldPath": run_id_field_path()}}})
    if notify is not None and notify.webhook.secret_key_ref is not None:
        secret = {"name": notify.webhook.secret_key_ref.name, "key": notify.webhook.secret_key_ref.key}
        env.append({"name": "RUNNER_NOTIFY_WEBHOOK", "valueFrom": {"secretKeyRef": secret}})
    if manifest.spec.workers > 1 and run_id is not None:
        # The worker's own index comes from JOB_COMPLETION_INDEX, which the Indexed Job sets.
        env.append(addresses_env(run_id, manifest.spec.workers))
    return env


def run_id_field_path() -> str:
    """The downward API's path to a pod's Job name (the job controller's label), a schedule run's id."""
    return f"metadata.labels['{JOB_NAME_LABEL}']"


def _resources(manifest: JobManifest) -> dict[str, dict[str, Any]]:
    """Requests equal to limits for CPU and memory (with both given, Guaranteed QoS: the last pods a
    node under pressure evicts); GPUs as a limit, which Kubernetes copies to the request."""
    resources = manifest.spec.resources
    amounts: dict[str, Any] = {}
    if resources.cpu is not None:
        amounts["cpu"] = format_cpu(resources.cpu)
    if resources.memory is not None:
        amounts["memory"] = format_memory(resources.memory)
    limits: dict[str, Any] = dict(amounts)
    if resources.gpu:
        limits[GPU_RESOURCE] = str(resources.gpu)  # quantities are strings in the API
    out: dict[str, dict[str, Any]] = {}
    if amounts:
        out["requests"] = amounts
    if limits:
        out["limits"] = limits
    return out


def _literal(value: str) -> str:
    """value as Kubernetes passes it on: it expands $(VAR) in env values, command and args ("$$" is
    a literal "$"). The other backends do not, so every "$" is escaped and the job sees its text."""
    return value.replace("$", "$$")
