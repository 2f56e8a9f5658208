"""The v1 job manifest: pydantic models with every default filled in.

Field names follow the manifest (camelCase where Kubernetes uses it: ``gpuType``, ``timeZone``,
``priorityClass``). Models are frozen and forbid unknown keys; the loader turns validation errors
into file:line:column messages.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner.spec.cron import parse_cron, validate_timezone
from runner.spec.quantities import (
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)

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


# Used with fullmatch: "$" would also match before a trailing newline, letting "mnist\n" through.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INPUT_NAME = re.compile(r"[a-z]([-a-z0-9_]*[a-z0-9])?")


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


def _check_dns_name(value: str, what: str, max_length: int, *, subdomain: bool) -> str:
    if len(value) > max_length:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; at most {max_length} are allowed")
    pattern, characters, kind = (
        (_DNS_SUBDOMAIN, "'-' and '.'", "subdomain") if subdomain else (_DNS_LABEL, "and '-'", "label")
    )
    if not pattern.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be lower-case letters, digits{',' if subdomain else ''} {characters}, "
            f"starting and ending with a letter or digit (Kubernetes DNS-1123 {kind})"
        )
    return value


def check_dns_label(value: str, what: str, max_length: int = 63) -> str:
    return _check_dns_name(value, what, max_length, subdomain=False)


def check_label_key(key: str) -> str:
    """A Kubernetes label or annotation key: an optional DNS-subdomain prefix and '/', then a name."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"the key's prefix {prefix!r} must be a lower-case DNS subdomain like example.com")
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            "a key must be 1-63 letters, digits, '-', '_' or '.' (after an optional prefix and '/'), "
            "starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_NAME.fullmatch(value):
        raise ValueError(
            f"label value {value!r} must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: str, what: str, max_length: int = 253) -> str:
    return _check_dns_name(value, what, max_length, subdomain=True)


def check_env_name(key: str) -> str:
    if not _ENV_NAME.fullmatch(key):
        raise ValueError("a variable name must be letters, digits and '_', not starting with a digit")
    if key.startswith("RUNNER_"):
        raise ValueError("names starting with RUNNER_ are reserved for the runner; rename the variable")
    return key


LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
EnvName = Annotated[str, AfterValidator(check_env_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """A key with an empty value (``env:`` and nothing after it) takes its default, like a missing one.

        Required fields keep their null, so that they are reported as such.
        """
        if not isinstance(data, dict):
            return data
        optional: set[str] = set()
        for name, info in cls.model_fields.items():
            if not info.is_required():
                optional.update((name, info.alias or name))
        return {key: value for key, value in data.items() if value is not None or key not in optional}


class Metadata(_Model):
    name: str
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns_label(value, "name", MAX_NAME_LENGTH)


class Image(_Model):
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


class Resources(_Model):
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
        if not value or len(value) > 63 or not _LABEL_NAME.fullmatch(value):
            raise ValueError(
                f"expected a GPU model like H100 or NVIDIA-A100-SXM4-40GB (letters, digits, '-', '_' "
                f"or '.'), got {value!r}"
            )
        if info.data.get("gpu") == 0:
            raise ValueError(f"gpuType {value!r} is set but gpu is 0; ask for at least one GPU")
        return value


class Input(_Model):
    name: str
    source: str
    path: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 63 or not _INPUT_NAME.fullmatch(value):
            raise ValueError(f"input name {value!r} must be lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected where the data comes from, like s3://bucket/data/ or ./data")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_container_path(value)

    @property
    def env_name(self) -> str:
        """The variable that tells the job where this input is: RUNNER_INPUT_<NAME>."""
        return "RUNNER_INPUT_" + self.name.upper().replace("-", "_")


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


class Outputs(_Model):
    path: str = "/outputs"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_container_path(value)


class Retention(_Model):
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


class Schedule(_Model):
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


class KubernetesOptions(_Model):
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


def _scalar_to_string(value: Any) -> Any:
    """Environment values are strings; accept YAML numbers and booleans as their usual text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def check_no_nul(value: str) -> str:
    """A command line argument or an environment value is a C string: a NUL byte would end it."""
    if "\x00" in value:
        raise ValueError(
            "contains a NUL character (\\0), which no command argument or environment variable can hold"
        )
    surrogate = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:  # only a "\uD800"-style escape makes one: it cannot be encoded for the job
        raise ValueError(f"contains {surrogate!r}, half of a UTF-16 surrogate pair, which is no character")
    return value


EnvValue = Annotated[str, BeforeValidator(_scalar_to_string), AfterValidator(check_no_nul)]
Argument = Annotated[str, BeforeValidator(_scalar_to_string), AfterValidator(check_no_nul)]

# A Secret's key (Kubernetes ConfigMap/Secret key rules).
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# What a value read from a file may hold: environment strings beyond this are refused by execve.
MAX_FILE_VALUE_BYTES = 64 * 1024


class SecretKeyRef(_Model):
    """A key of a Kubernetes Secret in the run's namespace (rendered as valueFrom.secretKeyRef)."""

    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns_subdomain(value, "Secret name")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if len(value) > 253 or not _SECRET_KEY.fullmatch(value):
            raise ValueError(f"a Secret's key is letters, digits, '-', '_' or '.', got {value!r}")
        return value


class EnvFrom(_Model):
    """An environment variable whose value is not in the manifest: exactly one source.

    fromEnv        a variable of the environment `runner submit` (or the scheduler) runs in, read
                   when each attempt starts (process and docker backends)
    fromFile       a file on this machine (absolute, or ~/...), read when each attempt starts; one
                   trailing newline is dropped (process and docker backends)
    secretKeyRef   {name, key} of a Secret in the run's namespace (kubernetes backend)

    The value is never written to the run records, the store or any rendered object.
    """

    from_env: str | None = Field(default=None, alias="fromEnv")
    from_file: str | None = Field(default=None, alias="fromFile")
    secret_key_ref: SecretKeyRef | None = Field(default=None, alias="secretKeyRef")

    @field_validator("from_env")
    @classmethod
    def _from_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"fromEnv names a variable: letters, digits and '_', not starting with a digit, got {value!r}"
            )
        return value

    @field_validator("from_file")
    @classmethod
    def _from_file(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not (value.startswith("/") or value.startswith("~/")) or not value.isprintable():
            raise ValueError(
                "fromFile is an absolute path on this machine (or ~/...), like ~/.secrets/api-key, "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EnvFrom:
        given = [name for name, value in self.sources().items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "an env reference has exactly one of fromEnv (a variable of the submitting environment), "
                "fromFile (a file on this machine) or secretKeyRef (a Kubernetes Secret's key)"
                + (f"; got {' and '.join(given)}" if given else "")
            )
        return self

    def sources(self) -> dict[str, Any]:
        return {"fromEnv": self.from_env, "fromFile": self.from_file, "secretKeyRef": self.secret_key_ref}

    @property
    def kind(self) -> str:
        """fromEnv, fromFile or secretKeyRef: the source given."""
        return next(name for name, value in self.sources().items() if value is not None)

    @property
    def local(self) -> bool:
        """Whether this machine resolves it (fromEnv, fromFile), rather than a cluster (secretKeyRef)."""
        return self.secret_key_ref is None


def _env_entry(value: Any) -> str:
    return "reference" if isinstance(value, dict | EnvFrom) else "value"


# A plain value, or a reference to where the value is (a mapping): EnvFrom.
EnvEntry = Annotated[
    Annotated[EnvValue, Tag("value")] | Annotated[EnvFrom, Tag("reference")],
    Discriminator(_env_entry),
]


class Spec(_Model):
    image: Image = Field(default_factory=Image)
    command: list[Argument] = Field(min_length=1)
    env: dict[EnvName, EnvEntry] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    inputs: list[Input] = Field(default_factory=list)
    outputs: Outputs = Field(default_factory=Outputs)
    retries: int = Field(default=0, ge=0, le=20, strict=True)
    timeout: Seconds | None = None
    schedule: Schedule | None = None
    retention: Retention | None = None
    kubernetes: KubernetesOptions = Field(default_factory=KubernetesOptions)

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


class JobManifest(_Model):
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
        return data
