"""The v1 job manifest: pydantic models with every default filled in.

Field names follow the manifest (camelCase where Kubernetes uses it: ``gpuType``, ``timeZone``,
``priorityClass``). Models are frozen and forbid unknown keys; the loader turns validation errors
into file:line:column messages.
"""

from __future__ import annotations

import secrets
import string
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner.spec.base import ManifestModel
from runner.spec.cron import parse_cron, validate_timezone
from runner.spec.env import Argument, EnvEntry, EnvFrom
from runner.spec.names import (
    INPUT_NAME,
    LABEL_NAME,
    EnvName,
    LabelKey,
    LabelValue,
    check_dns_label,
    check_dns_subdomain,
)
from runner.spec.notify import Notify
from runner.spec.quantities import (
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)
from runner.workers import MAX_WORKERS

DEFAULT_BASE_IMAGE = "tensorflow/tensorflow:2.21.0-gpu"

# A run id is "<name>-<6 characters>"; a CronJob name may be 52 characters at most. Keeping job names
# within 52 lets the same manifest gain a schedule and still leaves room for the run suffix in 63.
MAX_NAME_LENGTH = 52
RUN_SUFFIX_LENGTH = 6
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits

# spec.resources.pids: processes and threads (each thread takes a pid); the docker backend's default
# is runner.render.docker.DEFAULT_PIDS_LIMIT.
MIN_PIDS = 16  # a Python interpreter with a thread pool; fewer cannot start a job
MAX_PIDS = 4_194_304  # the kernel's largest pid_max


def new_run_id(job: str) -> str:
    """A fresh run id: the job's name, a dash and RUN_SUFFIX_LENGTH random lower-case letters and digits."""
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(RUN_SUFFIX_LENGTH))
    return f"{job}-{suffix}"


def _from(parse: Any) -> Any:
    """Wrap a quantity parser so that pydantic reports its ValueError at the field."""

    def validate(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a quantity, got {str(value).lower()}")
        return parse(value)

    return BeforeValidator(validate)


Millicores = Annotated[int, _from(parse_cpu), PlainSerializer(format_cpu, return_type=str)]
Bytes = Annotated[int, _from(parse_memory), PlainSerializer(format_memory, return_type=str)]
Seconds = Annotated[int, _from(parse_duration), PlainSerializer(format_duration, return_type=str)]


class Metadata(ManifestModel):
    name: str
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns_label(value, "name", MAX_NAME_LENGTH)


class Image(ManifestModel):
    base: str = DEFAULT_BASE_IMAGE
    requirements: str | list[str] | None = None
    apt: list[str] = Field(default_factory=list)
    context: str = "."

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"expected an image reference like {DEFAULT_BASE_IMAGE}, got {value!r}")
        return value


class Resources(ManifestModel):
    gpu: int = Field(default=0, ge=0, le=64, strict=True)
    gpu_type: str | None = Field(default=None, alias="gpuType")
    cpu: Millicores | None = None
    memory: Bytes | None = None
    # The most processes and threads the job's container may hold (docker's --pids-limit); None: the
    # docker backend's default (runner.render.docker.DEFAULT_PIDS_LIMIT). On a cluster the kubelet's
    # podPidsLimit applies (a node setting); the process backend sets none.
    pids: int | None = Field(default=None, ge=MIN_PIDS, le=MAX_PIDS, strict=True)

    @field_validator("gpu_type")
    @classmethod
    def _gpu_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        # It becomes the value of the nvidia.com/gpu.product node selector.
        if not value or len(value) > 63 or not LABEL_NAME.fullmatch(value):
            raise ValueError(
                f"expected a GPU model like H100 or NVIDIA-A100-SXM4-40GB (letters, digits, '-', '_' "
                f"or '.'), got {value!r}"
            )
        if info.data.get("gpu") == 0:
            raise ValueError(f"gpuType {value!r} is set but gpu is 0; ask for at least one GPU")
        return value


class Input(ManifestModel):
    name: str
    source: str
    path: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 63 or not INPUT_NAME.fullmatch(value):
            raise ValueError(f"input name {value!r} must be lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected where the data comes from, like s3://bucket/data/ or ./data")
        check_input_source(value)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_container_path(value)

    @property
    def env_name(self) -> str:
        """The variable that tells the job where this input is: RUNNER_INPUT_<NAME>."""
        return "RUNNER_INPUT_" + self.name.upper().replace("-", "_")


InputKind = Literal["local", "s3", "pvc", "url"]


def input_kind(source: str) -> InputKind:
    """What an input's source is: a path on this machine (also file: and local: URLs), s3://bucket/prefix,
    pvc://claim[/subpath] (a PersistentVolumeClaim of the run's namespace), or another URL."""
    scheme, sep, _ = source.partition("://")
    if not sep or scheme in ("file", "local"):
        return "local"
    if scheme == "s3":
        return "s3"
    if scheme == "pvc":
        return "pvc"
    return "url"


def parse_pvc(source: str) -> tuple[str, str | None]:
    """pvc://claim[/subpath] as (claim, subpath or None); ValueError when it is no such URL."""
    rest = source.partition("://")[2]
    claim, _, subpath = rest.partition("/")
    subpath = subpath.strip("/")
    check_dns_subdomain(claim, "PersistentVolumeClaim name")
    if subpath and any(part in ("", ".", "..") for part in subpath.split("/")):
        raise ValueError(f"pvc subpath {subpath!r}: '..', '.' and empty parts are not allowed")
    return claim, subpath or None


def check_input_source(source: str) -> str:
    """Refuse an s3:// source without bucket and prefix and a pvc:// source without a claim's name."""
    kind = input_kind(source)
    if kind == "pvc":
        if not source.partition("://")[2].strip("/"):
            raise ValueError(f"{source!r}: expected pvc://CLAIM[/SUBPATH], e.g. pvc://datasets/cells")
        parse_pvc(source)
    elif kind == "s3":
        bucket, _, prefix = source.partition("://")[2].partition("/")
        if not bucket or not prefix.strip("/"):
            raise ValueError(f"{source!r}: expected s3://BUCKET/PREFIX, e.g. s3://datasets/cells/")
    return source


def check_container_path(value: str) -> str:
    if (
        not value.startswith("/")
        or "/../" in value + "/"
        or not value.isprintable()
        or value.rstrip("/") == ""
    ):
        raise ValueError(f"expected an absolute path inside the container like /outputs, got {value!r}")
    return value


def _overlap(a: str, b: str) -> bool:
    """Whether one container path is the other or lies inside it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


class Outputs(ManifestModel):
    path: str = "/outputs"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_container_path(value)


class Retention(ManifestModel):
    """Which of a job's complete runs the store keeps: the newest keepLast runs, and/or the runs that
    finished within keepDays. A run is deleted only when no given rule keeps it; the run `latest` points
    at and runs still being written are never deleted."""

    keep_last: int | None = Field(default=None, ge=1, strict=True, alias="keepLast")
    keep_days: int | None = Field(default=None, ge=1, strict=True, alias="keepDays")

    @model_validator(mode="after")
    def _some_rule(self) -> Retention:
        if self.keep_last is None and self.keep_days is None:
            raise ValueError("retention needs keepLast, keepDays or both")
        return self

    def to_env(self) -> str:
        """The agent's RUNNER_RETENTION value: "keepLast=5,keepDays=30" (each part only when set)."""
        parts = [
            f"{name}={value}" for name, value in (("keepLast", self.keep_last), ("keepDays", self.keep_days))
        ]
        return ",".join(part for part in parts if not part.endswith("=None"))


class Schedule(ManifestModel):
    cron: str
    time_zone: str = Field(default="UTC", alias="timeZone")
    concurrency: Literal["Forbid", "Replace", "Allow"] = "Forbid"
    suspend: bool = Field(default=False, strict=True)
    # How late a slot may still start (CronJob startingDeadlineSeconds). At least an hour by default, so a
    # controller that was down for a while starts the missed run instead of silently dropping it.
    starting_deadline: Seconds = Field(default=3600, alias="startingDeadline")

    @field_validator("starting_deadline")
    @classmethod
    def _deadline(cls, value: int) -> int:
        if value < 10:
            raise ValueError(
                "startingDeadline must be at least 10s (the CronJob controller checks every 10s)"
            )
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        return validate_timezone(value)


class KubernetesOptions(ManifestModel):
    namespace: str | None = None
    queue: str | None = None
    priority_class: str | None = Field(default=None, alias="priorityClass")
    service_account: str | None = Field(default=None, alias="serviceAccount")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else check_dns_label(value, "namespace")

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        # A Kueue LocalQueue name, carried in the kueue.x-k8s.io/queue-name label.
        return None if value is None else check_dns_subdomain(value, "queue", 63)

    @field_validator("priority_class", "service_account")
    @classmethod
    def _object_name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns_subdomain(value, "name")


class Spec(ManifestModel):
    image: Image = Field(default_factory=Image)
    command: list[Argument] = Field(min_length=1)
    env: dict[EnvName, EnvEntry] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)  # per worker
    # copies of the command that train together, each told its place (runner/workers.py)
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS, strict=True)
    inputs: list[Input] = Field(default_factory=list)
    outputs: Outputs = Field(default_factory=Outputs)
    retries: int = Field(default=0, ge=0, le=20, strict=True)
    timeout: Seconds | None = None
    schedule: Schedule | None = None
    retention: Retention | None = None
    kubernetes: KubernetesOptions = Field(default_factory=KubernetesOptions)
    notify: Notify | None = None  # a webhook told when a run ends (runner/spec/notify.py)

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the first item of command is the program to run and cannot be empty")
        return value

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, inputs: list[Input]) -> list[Input]:
        names: dict[str, str] = {}
        paths: dict[str, str] = {}
        for item in inputs:
            if item.env_name in names:
                other = names[item.env_name]
                if other == item.name:
                    raise ValueError(f"two inputs are named {item.name!r}; input names must be unique")
                raise ValueError(
                    f"inputs {other!r} and {item.name!r} both become {item.env_name}; rename one"
                )
            names[item.env_name] = item.name
            for path, name in paths.items():
                if _overlap(path, item.path):
                    raise ValueError(f"inputs {name!r} ({path}) and {item.name!r} ({item.path}) overlap")
            paths[item.path] = item.name
        return inputs

    @property
    def env_values(self) -> dict[str, str]:
        """The env given as values in the manifest (references left out)."""
        return {name: value for name, value in self.env.items() if isinstance(value, str)}

    @property
    def env_references(self) -> dict[str, EnvFrom]:
        """The env given as references (fromEnv, fromFile, secretKeyRef): resolved where the job runs."""
        return {name: value for name, value in self.env.items() if isinstance(value, EnvFrom)}

    @model_validator(mode="after")
    def _outputs_apart_from_inputs(self) -> Spec:
        for item in self.inputs:
            if _overlap(item.path, self.outputs.path):
                raise ValueError(
                    f"input {item.name!r} at {item.path} overlaps the outputs path {self.outputs.path}; "
                    "keep inputs and outputs apart"
                )
        return self


class JobManifest(ManifestModel):
    api_version: Literal["runner/v1"] = Field(alias="apiVersion")
    kind: Literal["Job"]
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name

    def resolved(self) -> dict[str, Any]:
        """The manifest with every default filled in, as plain data in manifest spelling."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.spec.workers == 1:  # as before workers existed: the same digests and schedule names
            del data["spec"]["workers"]
        return data
