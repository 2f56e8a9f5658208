"""spec.env: plain values, and references to where a secret value is (never stored in the clear)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from runner.spec.base import ManifestModel
from runner.spec.names import ENV_NAME, check_dns_subdomain, check_no_nul


def _scalar_to_string(value: Any) -> Any:
    """Environment values are strings; accept YAML numbers and booleans as their usual text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_scalar_to_string), AfterValidator(check_no_nul)]
Argument = Annotated[str, BeforeValidator(_scalar_to_string), AfterValidator(check_no_nul)]

# A Secret's key (Kubernetes ConfigMap/Secret key rules).
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# What a value read from a file may hold: environment strings beyond this are refused by execve.
MAX_FILE_VALUE_BYTES = 64 * 1024


class SecretKeyRef(ManifestModel):
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


class EnvFrom(ManifestModel):
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
        if value is not None and not ENV_NAME.fullmatch(value):
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
