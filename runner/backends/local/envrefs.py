"""The manifest's env references on this machine (fromEnv, fromFile): checked at submit, read when each
attempt starts, never stored.

A run's launch details (LocalLaunch.env_from, in the run record) keep only where each value is: a
variable's name or a file's absolute path. The supervisor reads the values when it starts an attempt,
from its own environment (the one `runner submit` or the scheduler ran in) and from the files, and
puts them in the attempt's environment alone: not in runs.db, the store's job.yaml or run.json.

Standard library only at import time: the supervisor imports this module and never pydantic.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import SubmitError

if TYPE_CHECKING:
    from runner.spec.env import EnvFrom
    from runner.spec.model import Spec

FROM_ENV = "fromEnv"
WEBHOOK = "notify.webhook"  # spec.notify's webhook, checked and read as the env references are
FROM_FILE = "fromFile"
# Environment strings beyond this are refused by execve (MAX_ARG_STRLEN is 128 KiB).
MAX_VALUE_BYTES = 64 * 1024


class UnreadableReference(ValueError):
    """A reference that cannot be read now; the message names the variable and never holds a value."""


def launch_references(spec: Spec, backend: str) -> dict[str, dict[str, str]]:
    """The spec's env references as the launch details keep them: name -> {fromEnv: VAR} or
    {fromFile: /absolute/path}. Raises SubmitError for what this backend cannot read (secretKeyRef)."""
    references: dict[str, dict[str, str]] = {}
    for name, entry in spec.env_references.items():
        references[name] = _local(name, entry, backend)
    return references


def _local(name: str, entry: EnvFrom, backend: str) -> dict[str, str]:
    if entry.from_env is not None:
        return {FROM_ENV: entry.from_env}
    if entry.from_file is not None:
        return {FROM_FILE: str(Path(entry.from_file).expanduser())}
    raise SubmitError(
        f"{_field(name)}: secretKeyRef names a Kubernetes Secret, which the {backend} backend cannot read",
        hint=f"on this machine write {name}: {{fromEnv: VARIABLE}} or {{fromFile: /path/to/file}}, "
        "or submit with --backend kubernetes",
    )


def notify_launch(spec: Spec, backend: str) -> dict[str, Any] | None:
    """spec.notify as the launch details keep it: {"webhook": {fromEnv: VAR} or {fromFile: /path},
    "on": [events]}, or None. The supervisor reads the URL when the run ends (runner.backends.local.tell)."""
    if spec.notify is None:
        return None
    webhook = _local(WEBHOOK, spec.notify.webhook, backend)
    return {"webhook": webhook, "on": list(spec.notify.on)}


def check_references(spec: Spec, backend: str, environ: Mapping[str, str] | None = None) -> None:
    """At submit: every reference can be read now (the variable is set, the file is a readable regular
    file of at most MAX_VALUE_BYTES). Raises SubmitError naming the variable, never its value."""
    references = launch_references(spec, backend)
    notify = notify_launch(spec, backend)
    if notify is not None:
        references[WEBHOOK] = notify["webhook"]
    for name, reference in references.items():
        try:
            _check(name, reference, os.environ if environ is None else environ)
        except UnreadableReference as problem:
            raise SubmitError(str(problem), hint=_hint(reference)) from None


def _hint(reference: Mapping[str, str]) -> str:
    if FROM_ENV in reference:
        variable = reference[FROM_ENV]
        return f"export {variable} where `runner submit` runs (for schedules: the scheduler's env file)"
    return "create the file, readable by you (chmod 600), or point fromFile elsewhere"


def _check(name: str, reference: Mapping[str, str], environ: Mapping[str, str]) -> None:
    if FROM_ENV in reference:
        variable = reference[FROM_ENV]
        if variable not in environ:
            raise UnreadableReference(f"{_field(name)}: fromEnv: the variable {variable} is not set")
        if "\x00" in environ[variable]:  # pragma: no cover - an environment cannot hold one
            raise UnreadableReference(f"{_field(name)}: fromEnv: {variable} contains a NUL character")
        return
    path = reference[FROM_FILE]
    try:
        info = Path(path).stat()
    except OSError as error:
        raise UnreadableReference(f"{_field(name)}: fromFile: cannot read {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableReference(f"{_field(name)}: fromFile: {path} is not a regular file")
    if info.st_size > MAX_VALUE_BYTES:
        raise UnreadableReference(
            f"{_field(name)}: fromFile: {path} is {info.st_size} bytes; a variable holds at most "
            f"{MAX_VALUE_BYTES}"
        )
    if not os.access(path, os.R_OK):
        raise UnreadableReference(f"{_field(name)}: fromFile: cannot read {path}: permission denied")


def resolve(
    references: Mapping[str, Mapping[str, str]], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The values of references (LocalLaunch.env_from), read now: name -> value. Raises
    UnreadableReference (naming the variable and where it was looked for, never a value)."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name, reference in references.items():
        _check(name, reference, environ)
        if FROM_ENV in reference:
            values[name] = environ[reference[FROM_ENV]]
            continue
        path = reference[FROM_FILE]
        try:
            with Path(path).open("rb") as file:
                raw = file.read(MAX_VALUE_BYTES + 1)
        except OSError as error:
            raise UnreadableReference(
                f"{_field(name)}: fromFile: cannot read {path}: {error.strerror}"
            ) from None
        if len(raw) > MAX_VALUE_BYTES:
            raise UnreadableReference(
                f"{_field(name)}: fromFile: {path} is larger than {MAX_VALUE_BYTES} bytes"
            )
        if b"\x00" in raw:
            raise UnreadableReference(f"{_field(name)}: fromFile: {path} contains a NUL byte")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableReference(f"{_field(name)}: fromFile: {path} is not UTF-8 text") from None
        # One trailing newline is the file's end of line, not part of the value (echo TOKEN > file).
        values[name] = text.removesuffix("\n").removesuffix("\r")
    return values


def _field(name: str) -> str:
    """The manifest field a reference is at: spec.env.NAME, or spec.notify.webhook."""
    return f"spec.{name}" if name == WEBHOOK else f"spec.env.{name}"
