"""The Kubernetes objects of a run or of a schedule: a ConfigMap holding the resolved manifest, and a
batch/v1 Job (one run) or a batch/v1 CronJob (a schedule, whose Jobs are its runs). Pure.

``render_job`` and ``render_cronjob`` return plain dicts in the order to apply them (the ConfigMap
first: the pods mount it); ``runner.render.kubeyaml.to_yaml`` turns them into what ``kubectl apply -f -``
takes. Nothing here talks to a cluster. The conventions are ARCHITECTURE.md's "Kubernetes conventions";
each decision below says why where it is made.

A schedule's run has no id before the CronJob controller creates its Job, named
``<schedule>-<scheduled unix minutes>``: that name is the run id. So a schedule's objects carry no
runner.dev/run label, and the agent reads RUNNER_RUN_ID from its pod's batch.kubernetes.io/job-name
label (the downward API) instead of a value.

What the job's pod looks like::

    container "job"   the job image, `python -m runner.agent -- <spec.command>`, as UID/GID 1000,
                      restricted Pod Security (non-root, no privilege escalation, no capabilities,
                      RuntimeDefault seccomp); env: the manifest's, RUNNER_INPUT_<NAME>, the agent's
                      settings (RUNNER_STORE, RUNNER_JOB, ...) and the store's credentials by
                      reference to a Secret, never as values
    volumes           outputs (emptyDir at spec.outputs.path), the manifest ConfigMap read-only at
                      /etc/runner/job.yaml (RUNNER_MANIFEST), /tmp (emptyDir), one emptyDir per input
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from runner.errors import UserError
from runner.render.gpus import gpu_placement
from runner.render.manifest import resolved_yaml
from runner.spec import JobManifest
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER, RUN_LABEL, SCHEDULE_LABEL, run_labels
from runner.spec.model import check_dns_label, check_dns_subdomain
from runner.spec.quantities import format_cpu, format_memory

# Labels and annotations besides the run's own (runner.spec.labels).
NAME_LABEL = "app.kubernetes.io/name"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANIFEST_SHA256 = "runner.dev/manifest-sha256"
INPUTS_ANNOTATION = "runner.dev/inputs"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
APP_NAME = "runner-job"

# The pod. UID and WORKDIR are the job image's (runner.images.recipe; a test keeps them equal).
CONTAINER = "job"
UID = 1000
WORKDIR = "/job"
AGENT = ("python", "-m", "runner.agent", "--")
MANIFEST_DIR = "/etc/runner"
MANIFEST_FILE = "job.yaml"
MANIFEST_PATH = f"{MANIFEST_DIR}/{MANIFEST_FILE}"
TMP = "/tmp"
BACKEND = "kubernetes"

# GPUs: the NVIDIA device plugin's resource, GPU feature discovery's product label, and the taint
# GPU node pools carry.
GPU_RESOURCE = "nvidia.com/gpu"

# What the job controller labels each pod of a Job with (Kubernetes 1.27 and later): the Job's name,
# which is the run id of a schedule's run.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# A CronJob's Jobs are named "<cronjob>-<scheduled unix minutes>": the API caps CronJob names at 52.
MAX_CRONJOB_NAME = 52
# How many finished Jobs (with their pods, for kubectl logs and describe) a CronJob keeps, each kind.
# The store keeps every run's logs and outputs; this is only what an operator sees with kubectl.
# Three failures, not Kubernetes' default of one: a nightly job that fails several nights running is
# debugged by comparing them. ttlSecondsAfterFinished removes them after TTL_SECONDS anyway.
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 3
# The length of the manifest digest in a schedule's ConfigMap name: <schedule>-<digest>, at most 63.
CONFIG_MAP_DIGEST = 10

# Lifetimes.
TTL_SECONDS = 3 * 86400  # a finished Job (and its pods, their logs) is kept 3 days for kubectl
DEFAULT_GRACE = 10.0  # RUNNER_GRACE: SIGTERM to SIGKILL of the command, inside the agent
UPLOAD_SECONDS = 50  # after the command is gone, the agent's time to collect into the store
MAX_GRACE = 3600.0
MAX_CONFIG_MAP_BYTES = 1024 * 1024 - 1024  # the API's limit on a ConfigMap's data, less its key
MAX_ANNOTATIONS_BYTES = 256 * 1024  # the API's limit on one object's annotations, keys included
# Exit codes that another attempt of the same image cannot change: the agent's "command not found"
# (127) and "found but cannot be executed" (126). Everything else is retried up to backoffLimit.
UNRETRYABLE_EXIT_CODES = (126, 127)

# The store's credentials, each from the key of the same name in the Secret named by store_secret
# (boto3's variables). Optional keys may be absent from the Secret.
STORE_SECRET_KEYS: tuple[tuple[str, bool], ...] = (
    ("AWS_ACCESS_KEY_ID", False),
    ("AWS_SECRET_ACCESS_KEY", False),
    ("AWS_SESSION_TOKEN", True),
    ("AWS_ENDPOINT_URL", True),
    ("AWS_DEFAULT_REGION", True),
)
# Variables that hold a secret: never as a literal value in a Job, which anyone who may read Jobs reads.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
CLUSTER_STORE_SCHEMES = ("s3",)

# A mount at or above one of these would hide what the container needs to start, or collide with
# the runner's own mounts; anything inside /proc or /sys cannot be a mount point.
_PROTECTED = (
    "/bin",
    "/dev",
    "/lib",
    "/lib64",
    "/sbin",
    "/usr/bin",
    "/usr/lib",
    "/usr/local/bin",
    "/usr/local/lib",
    "/var/run",
    MANIFEST_DIR,
    WORKDIR,
)
_NO_MOUNTS_INSIDE = ("/proc", "/sys", MANIFEST_DIR)
_CREDENTIAL_PARAMETER = re.compile(r"secret|token|passw|signature|credential|access.?key", re.IGNORECASE)


@dataclass(frozen=True)
class _Common:
    """What a run's and a schedule's objects share, checked once: the manifest as stored, its digest,
    the objects' annotations, the namespace, where the outputs and inputs are mounted, and the
    arguments their pods are rendered from."""

    manifest_text: str
    digest: str
    annotations: dict[str, str]
    namespace: str | None
    outputs: str
    input_paths: list[str]
    image: str
    store_url: str
    store_secret: str | None
    grace: float
    ttl_seconds: int


def render_job(
    manifest: JobManifest,
    *,
    run_id: str,
    image: str,
    store_url: str,
    namespace: str | None = None,
    store_secret: str | None = None,
    manifest_text: str | None = None,
    inputs: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    ttl_seconds: int = TTL_SECONDS,
) -> list[dict[str, Any]]:
    """The objects that run one run of manifest on a cluster, in the order to apply them.

    run_id        the run's id, also the ConfigMap's and the Job's name (a DNS label, at most 63)
    image         the built job image (its entrypoint is the agent)
    store_url     the artifact store the agent collects into: s3://bucket[/prefix]
    namespace     where the objects go; default the manifest's spec.kubernetes.namespace, else none
                  (kubectl's current namespace)
    store_secret  a Secret with the store's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
                  optionally AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION); without it the
                  pod relies on the node's or the service account's cloud identity
    manifest_text the resolved manifest as stored with the run (default: resolved_yaml(manifest))
    inputs        input name -> source, overriding the manifest's (runner submit --input)
    grace         RUNNER_GRACE, the agent's SIGTERM-to-SIGKILL time for the command
    ttl_seconds   how long Kubernetes keeps the finished Job

    Raises UserError for what cannot run on a cluster: local input paths, a store pods cannot reach,
    credentials in URLs or in the manifest's env, mounts over the container's system directories.
    """
    _check_name(run_id, "run id", "a run id is <job>-<suffix>, like mnist-k3x9q2")
    common = _common(
        manifest,
        image=image,
        store_url=store_url,
        namespace=namespace,
        store_secret=store_secret,
        manifest_text=manifest_text,
        inputs=inputs,
        grace=grace,
        ttl_seconds=ttl_seconds,
    )
    labels = job_labels(manifest, run_id)
    config_map = _config_map(run_id, labels, common)
    pod = _pod_spec(manifest, common, config_map=run_id, run_id=run_id)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(run_id, common.namespace, _with_queue(manifest, labels), common.annotations),
        "spec": _job_spec(manifest, labels, pod, common),
    }
    return [config_map, job]


def render_cronjob(
    manifest: JobManifest,
    *,
    image: str,
    store_url: str,
    namespace: str | None = None,
    store_secret: str | None = None,
    manifest_text: str | None = None,
    inputs: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    ttl_seconds: int = TTL_SECONDS,
) -> list[dict[str, Any]]:
    """The objects of manifest's schedule (spec.schedule) on a cluster: a ConfigMap, then a CronJob.

    The CronJob is named after the job (the schedule's name); each Job it creates is one run, an
    ordinary one: the same pod as render_job's, labelled runner.dev/schedule, whose run id is the Job's
    name. The ConfigMap holds the resolved manifest for all of them; its name carries the manifest's
    digest (<job>-<10 hex digits>), so a run never reads a manifest other than the one its Job was
    templated with, and it cannot clash with a run's ConfigMap (named <job>-<6 characters>). The
    arguments are render_job's, without a run id.

    Raises UserError for a manifest without a schedule, and for what render_job refuses.
    """
    schedule = manifest.spec.schedule
    if schedule is None:
        raise UserError(
            f"job {manifest.name!r} has no schedule",
            hint="add spec.schedule, e.g. schedule: {cron: '0 2 * * *', timeZone: Europe/Berlin}",
        )
    name = manifest.name
    # Validated manifests have names of at most MAX_NAME_LENGTH (52, a test keeps it so); one built
    # around the validation is refused here rather than by the API server.
    _check_name(name, "job name", f"a schedule's name is its job's: at most {MAX_CRONJOB_NAME} characters")
    if len(name) > MAX_CRONJOB_NAME:
        raise UserError(
            f"job name {name!r} is longer than the {MAX_CRONJOB_NAME} characters a CronJob's name may have",
            hint="shorten metadata.name",
        )
    common = _common(
        manifest,
        image=image,
        store_url=store_url,
        namespace=namespace,
        store_secret=store_secret,
        manifest_text=manifest_text,
        inputs=inputs,
        grace=grace,
        ttl_seconds=ttl_seconds,
    )
    labels = schedule_labels(manifest)
    config_map = _config_map(schedule_config_map_name(name, common.digest), labels, common)
    pod = _pod_spec(manifest, common, config_map=config_map["metadata"]["name"], run_id=None)
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(name, common.namespace, labels, common.annotations),
        "spec": {
            "schedule": schedule.cron,
            "timeZone": schedule.time_zone,
            "concurrencyPolicy": schedule.concurrency,
            "suspend": schedule.suspend,
            # A slot missed by up to this long (the controller was down, Forbid waited on a long run)
            # still starts; one missed by more is skipped, and the CronJob records it.
            "startingDeadlineSeconds": schedule.starting_deadline,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
            "jobTemplate": {
                "metadata": {
                    "labels": _sorted(_with_queue(manifest, labels)),
                    "annotations": _sorted(common.annotations),
                },
                "spec": _job_spec(manifest, labels, pod, common),
            },
        },
    }
    return [config_map, cronjob]


def job_labels(manifest: JobManifest, run_id: str) -> dict[str, str]:
    """The run's labels: the manifest's, then the runner's (which win on a clash), sorted by key."""
    return _sorted({**run_labels(manifest.metadata.labels, manifest.name, run_id), NAME_LABEL: APP_NAME})


def schedule_labels(manifest: JobManifest) -> dict[str, str]:
    """A schedule's labels, on its CronJob, ConfigMap, Jobs and pods: the manifest's, then the runner's
    with runner.dev/schedule instead of runner.dev/run (no run exists yet), sorted by key."""
    labels = {
        **manifest.metadata.labels,
        MANAGED_BY: MANAGER,
        JOB_LABEL: manifest.name,
        SCHEDULE_LABEL: manifest.name,
        NAME_LABEL: APP_NAME,
    }
    labels.pop(RUN_LABEL, None)
    return _sorted(labels)


def schedule_config_map_name(name: str, digest: str) -> str:
    """The ConfigMap of a schedule whose resolved manifest has this sha256 digest (hex)."""
    return f"{name}-{digest[:CONFIG_MAP_DIGEST]}"


def _common(
    manifest: JobManifest,
    *,
    image: str,
    store_url: str,
    namespace: str | None,
    store_secret: str | None,
    manifest_text: str | None,
    inputs: Mapping[str, str] | None,
    grace: float,
    ttl_seconds: int,
) -> _Common:
    if manifest_text is None:
        manifest_text = resolved_yaml(manifest)
    spec = manifest.spec
    namespace = namespace if namespace is not None else spec.kubernetes.namespace
    _check_arguments(
        image=image,
        store_url=store_url,
        namespace=namespace,
        store_secret=store_secret,
        manifest_text=manifest_text,
        grace=grace,
        ttl_seconds=ttl_seconds,
    )
    sources = input_sources(manifest, inputs or {})
    _check_env(manifest, store_secret)
    outputs = mount_path(spec.outputs.path)
    input_paths = [mount_path(item.path) for item in spec.inputs]
    _check_mounts(
        {"spec.outputs.path": outputs}
        | {f"input {item.name!r}": path for item, path in zip(spec.inputs, input_paths, strict=True)}
    )
    digest = hashlib.sha256(manifest_text.encode("utf-8")).hexdigest()
    annotations = dict(manifest.metadata.annotations)
    annotations[MANIFEST_SHA256] = digest
    if sources:
        # Where each input comes from: nothing fetches remote inputs yet (see input_sources).
        annotations[INPUTS_ANNOTATION] = json.dumps(sources, sort_keys=True, separators=(",", ":"))
    if (
        sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())
        > MAX_ANNOTATIONS_BYTES
    ):
        raise UserError(
            "metadata.annotations and the inputs' sources exceed the 256KiB Kubernetes allows on an object",
            hint="keep annotations short",
        )
    return _Common(
        manifest_text,
        digest,
        annotations,
        namespace,
        outputs,
        input_paths,
        image,
        store_url,
        store_secret,
        grace,
        ttl_seconds,
    )


def _config_map(name: str, labels: Mapping[str, str], common: _Common) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, common.namespace, labels, {MANIFEST_SHA256: common.digest}),
        # The manifest of a run never changes (a schedule's ConfigMap is named by its digest);
        # immutable ConfigMaps also spare the kubelet a watch.
        "immutable": True,
        "data": {MANIFEST_FILE: common.manifest_text},
    }


def _with_queue(manifest: JobManifest, labels: Mapping[str, str]) -> dict[str, str]:
    """A Job's own labels: with the Kueue queue label when spec.kubernetes.queue is set. Only on Jobs,
    never on their pods: Kueue's pod integration would gate labelled pods too."""
    queue = manifest.spec.kubernetes.queue
    return dict(labels) if queue is None else {**labels, QUEUE_LABEL: queue}


def _job_spec(
    manifest: JobManifest, labels: Mapping[str, str], pod: dict[str, Any], common: _Common
) -> dict[str, Any]:
    """A Job's spec, for a run's Job and a CronJob's jobTemplate alike."""
    spec = manifest.spec
    job_spec: dict[str, Any] = {
        # Kueue admits a queued Job by unsuspending it. Its webhook suspends labelled Jobs anyway;
        # creating them suspended means a Job never starts before admission, even where the
        # webhook did not run. Without Kueue such a Job waits, visibly suspended.
        "suspend": spec.kubernetes.queue is not None,
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": spec.retries,
    }
    if spec.timeout is not None:
        # The whole run, retries and their backoff included, as spec.timeout means everywhere.
        # Kubernetes restarts this clock when a suspended (queued) Job is resumed.
        job_spec["activeDeadlineSeconds"] = spec.timeout
    job_spec["ttlSecondsAfterFinished"] = common.ttl_seconds
    job_spec["podFailurePolicy"] = pod_failure_policy()
    job_spec["template"] = {
        "metadata": {
            "labels": _sorted(labels),
            "annotations": _sorted(
                {
                    **manifest.metadata.annotations,
                    MANIFEST_SHA256: common.digest,
                    DEFAULT_CONTAINER: CONTAINER,
                }
            ),
        },
        "spec": pod,
    }
    return job_spec


def pod_failure_policy() -> dict[str, Any]:
    """Disruptions (preemption, eviction, node drain) are not failures of the job: they are retried
    without counting against backoffLimit. A command that cannot start fails the Job at once."""
    return {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": CONTAINER,
                    "operator": "In",
                    "values": list(UNRETRYABLE_EXIT_CODES),
                },
            },
        ]
    }


def input_sources(manifest: JobManifest, overrides: Mapping[str, str]) -> dict[str, str]:
    """Each input's source (overrides win), checked to be something a pod could fetch.

    A path on this machine means nothing on a cluster node, so it is refused. Remote sources are
    recorded in the runner.dev/inputs annotation and the job sees RUNNER_INPUT_<NAME> pointing at an
    empty directory at the input's path: fetching them is the agent's job, not done yet.
    """
    names = [item.name for item in manifest.spec.inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise UserError(
            f"input {unknown[0]!r}: the manifest has no such input (its inputs: {', '.join(names) or 'none'})"
        )
    sources: dict[str, str] = {}
    for item in manifest.spec.inputs:
        source = overrides.get(item.name, item.source)
        _check_no_credentials(source, f"input {item.name!r}")
        if not _remote(source):
            raise UserError(
                f"input {item.name!r}: {source!r} is not a URL a pod can fetch from; pods on a cluster "
                "cannot read paths on this machine",
                hint=f"put the data in object storage and pass it, e.g. --input {item.name}=s3://bucket/"
                f"{item.name}/",
            )
        sources[item.name] = source
    return sources


def mount_path(path: str) -> str:
    """A container path as a mount point: no trailing, doubled or '.' separators."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def owned_by(obj: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of obj owned by the created job (whose metadata carries its uid), so that Kubernetes
    deletes obj with the Job (ttlSecondsAfterFinished). A uid only exists once the Job is created:
    the backend applies the ConfigMap, creates the Job, then patches the ConfigMap with this."""
    metadata = job["metadata"]
    if not metadata.get("uid"):
        raise ValueError("owned_by needs the Job as created: its metadata has no uid")
    owned = copy.deepcopy(dict(obj))
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": metadata["name"], "uid": metadata["uid"]}
    ]
    return owned


# ----------------------------------------------------------------------------------------- pod


def _pod_spec(
    manifest: JobManifest, common: _Common, *, config_map: str, run_id: str | None
) -> dict[str, Any]:
    spec = manifest.spec
    outputs, input_paths = common.outputs, common.input_paths
    options = spec.kubernetes
    gpus = spec.resources.gpu
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # On SIGTERM (cancel, deadline, eviction) the agent gives the command RUNNER_GRACE seconds,
        # kills it, then collects outputs and logs into the store: the kubelet must wait for both.
        "terminationGracePeriodSeconds": math.ceil(common.grace) + UPLOAD_SECONDS,
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
    for index, path in enumerate(input_paths):
        mounts.append({"name": f"input-{index}", "mountPath": path})
        volumes.append({"name": f"input-{index}", "emptyDir": {}})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": common.image,
        "imagePullPolicy": "IfNotPresent",  # job images are tagged by content hash
        # The agent explicitly, then the manifest's command (the image's CMD is the same command).
        "command": list(AGENT),
        "args": [_literal(argument) for argument in spec.command],
        "workingDir": WORKDIR,
        "env": _environment(manifest, common, run_id),
    }
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


def _environment(manifest: JobManifest, common: _Common, run_id: str | None) -> list[dict[str, Any]]:
    spec = manifest.spec
    store_secret = common.store_secret
    env: list[dict[str, Any]] = [{"name": name, "value": _literal(value)} for name, value in spec.env.items()]
    env += [
        {"name": item.env_name, "value": _literal(path)}
        for item, path in zip(spec.inputs, common.input_paths, strict=True)
    ]
    if not spec.resources.gpu:
        # No GPUs asked for, none seen, as under the process backend: CUDA hides them, and the
        # NVIDIA runtime (where it is the node's default) does not inject any. The manifest may say
        # otherwise.
        for name, value in (("CUDA_VISIBLE_DEVICES", ""), ("NVIDIA_VISIBLE_DEVICES", "void")):
            if name not in spec.env:
                env.append({"name": name, "value": value})
    if store_secret is not None:
        for name, optional in STORE_SECRET_KEYS:
            reference: dict[str, Any] = {"name": store_secret, "key": name}
            if optional:
                reference["optional"] = True
            env.append({"name": name, "valueFrom": {"secretKeyRef": reference}})
    # The agent's settings (runner.agent.settings). RUNNER_ATTEMPT is left out: Kubernetes gives a
    # Job's pods no attempt number.
    agent: dict[str, str | None] = {
        "RUNNER_STORE": common.store_url,
        "RUNNER_JOB": manifest.name,
        "RUNNER_RUN_ID": run_id,
        "RUNNER_OUTPUTS": common.outputs,
        "RUNNER_MANIFEST": MANIFEST_PATH,
        "RUNNER_GRACE": f"{common.grace:g}",
        "RUNNER_BACKEND": BACKEND,
    }
    if spec.retention is not None:
        # Which of the job's runs the store keeps: the agent prunes once its own run is complete.
        agent["RUNNER_RETENTION"] = spec.retention.to_env()
    for variable, setting in agent.items():
        if setting is not None:
            env.append({"name": variable, "value": _literal(setting)})
        else:  # RUNNER_RUN_ID of a schedule's run: its Job's name, known once the CronJob creates it
            env.append({"name": variable, "valueFrom": {"fieldRef": {"fieldPath": run_id_field_path()}}})
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


# -------------------------------------------------------------------------------------- checks


def _literal(value: str) -> str:
    """value as Kubernetes passes it on: it expands $(VAR) in env values, command and args ("$$" is
    a literal "$"). The other backends do not, so every "$" is escaped and the job sees its text."""
    return value.replace("$", "$$")


def _metadata(
    name: str, namespace: str | None, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = _sorted(labels)
    metadata["annotations"] = _sorted(annotations)
    return metadata


def _sorted(mapping: Mapping[str, str]) -> dict[str, str]:
    return {key: mapping[key] for key in sorted(mapping)}


def _check_arguments(
    *,
    image: str,
    store_url: str,
    namespace: str | None,
    store_secret: str | None,
    manifest_text: str,
    grace: float,
    ttl_seconds: int,
) -> None:
    _check_image(image)
    _check_store(store_url)
    if store_secret is not None:
        _check_object_name(store_secret, "store secret")
    if namespace is not None:
        _check_name(namespace, "namespace", "use the name of an existing namespace, like ml")
    if not (math.isfinite(grace) and 0 <= grace <= MAX_GRACE):
        raise UserError(
            f"the grace period {grace!r} is not a number of seconds up to {MAX_GRACE}",
            hint="set RUNNER_GRACE to e.g. 10",
        )
    if ttl_seconds < 0:
        raise UserError(f"ttlSecondsAfterFinished {ttl_seconds} is negative")
    if len(manifest_text.encode("utf-8")) > MAX_CONFIG_MAP_BYTES:
        raise UserError(
            "the resolved manifest is larger than a ConfigMap can hold (1MiB)",
            hint="keep data and long text out of the manifest",
        )


def _check_name(value: str, what: str, hint: str) -> None:
    try:
        check_dns_label(value, what)
    except ValueError as problem:
        raise UserError(str(problem), hint=hint) from None


def _check_object_name(value: str, what: str) -> None:
    try:
        check_dns_subdomain(value, what)
    except ValueError as problem:
        raise UserError(str(problem), hint="name the Secret, like runner-store") from None


def _check_image(image: str) -> None:
    if not image or not image.isprintable() or any(c.isspace() for c in image):
        raise UserError(
            f"{image!r} is not an image reference", hint="build the job image first (runner build)"
        )


def _remote(url: str, schemes: tuple[str, ...] | None = None) -> bool:
    """Whether url names a host (s3://bucket/..., https://host/...), not a path here (file:, local:)."""
    if "://" not in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed '[' in the host
        return False
    if schemes is not None and parts.scheme not in schemes:
        return False
    return parts.scheme not in ("", "file", "local") and bool(parts.netloc)


def _check_store(url: str) -> None:
    _check_no_credentials(url, "store")
    if not _remote(url, CLUSTER_STORE_SCHEMES):
        raise UserError(
            f"store {url!r}: pods on a cluster collect into object storage, not a path on this machine",
            hint="set RUNNER_STORE to an s3:// URL every node can reach, e.g. s3://bucket/runner",
        )


def _check_no_credentials(url: str, what: str) -> None:
    """Refuse a URL with user:password@ or a credential-like query parameter, without echoing it.

    Any '@' before the query counts: a password with a '/' (AWS secret keys have them) ends the
    authority early and would hide the rest in the path.
    """
    hint = (
        "keep credentials in a Secret (the store's: --store-secret), never in a URL; write a literal @ as %40"
    )
    if "@" in url.split("?", 1)[0].split("#", 1)[0]:
        raise UserError(f"{what}: the URL carries credentials ('@'); it is not shown here", hint=hint)
    try:
        query = urlsplit(url).query
    except ValueError:
        return  # not a URL: refused elsewhere
    for key, _ in parse_qsl(query, keep_blank_values=True):
        if _CREDENTIAL_PARAMETER.search(key):
            raise UserError(f"{what}: the URL carries a credential in its query ({key})", hint=hint)


def _check_env(manifest: JobManifest, store_secret: str | None) -> None:
    for name in manifest.spec.env:
        if name in SECRET_VARIABLES:
            raise UserError(
                f"spec.env.{name}: a secret would be written into the Job, for anyone who can read Jobs",
                hint="put it in a Secret and pass its name as the store secret",
            )
        if store_secret is not None and name in dict(STORE_SECRET_KEYS):
            raise UserError(
                f"spec.env.{name}: also comes from the store secret {store_secret!r}",
                hint=f"set {name} in the Secret, or remove it from spec.env",
            )


def _check_mounts(paths: Mapping[str, str]) -> None:
    for what, path in paths.items():
        for protected in _PROTECTED:
            if _within(protected, path):
                raise UserError(
                    f"{what}: a volume at {path} would hide {protected}, which the container needs",
                    hint="use a directory of its own, like /outputs or /data/<name>",
                )
        for special in _NO_MOUNTS_INSIDE:
            if _within(path, special):
                raise UserError(f"{what}: {path} is inside {special}, where nothing can be mounted")


def _within(path: str, directory: str) -> bool:
    """Whether path is directory or lies inside it."""
    return (path.rstrip("/") + "/").startswith(directory.rstrip("/") + "/")
