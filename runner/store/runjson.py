"""run.json, the record of a run kept beside its artifacts: its schema version, casing and times.

Version 2 (`schemaVersion: 2`): camelCase keys throughout (`exitCode`, attempts' `exitCode`), times as
RFC 3339 strings in UTC (`2026-12-05T07:09:35.123456Z`), the job image as `{reference, digest}`.
Version 1 (no `schemaVersion`): the same document with epoch-second times and attempts' `exit_code`.
Readers go through the functions here, which read both. Standard library only: the agent writes it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.timestamps import seconds

SCHEMA_VERSION = 2


def rfc3339(seconds: float | None) -> str | None:
    """Seconds since the epoch as an RFC 3339 UTC time (microseconds kept: runs are ordered by them)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def attempt(
    number: int, started: float, finished: float, *, exit_code: int, ending: str, log: str
) -> dict[str, Any]:
    """One attempt as version 2 writes it."""
    return {
        "number": number,
        "started": rfc3339(started),
        "finished": rfc3339(finished),
        "exitCode": exit_code,
        "ending": ending,
        "log": log,
    }


def finished_of(document: dict[str, Any]) -> float | None:
    return seconds(document.get("finished"))


def exit_code_of(document: dict[str, Any]) -> int | None:
    code = document.get("exitCode", document.get("exit_code"))
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def upgraded(document: dict[str, Any]) -> dict[str, Any]:
    """Any version's run.json as version 2 reads: what `runner status -o json` and the like show."""
    if document.get("schemaVersion") == SCHEMA_VERSION:
        return document
    out = dict(document)
    out["schemaVersion"] = SCHEMA_VERSION
    for key in ("created", "started", "finished"):
        if key in out:
            out[key] = _time(out[key])
    if "exit_code" in out:
        out.setdefault("exitCode", out.pop("exit_code"))
    attempts = out.get("attempts")
    if isinstance(attempts, list):
        out["attempts"] = [_upgraded_attempt(item) if isinstance(item, dict) else item for item in attempts]
    return out


def _upgraded_attempt(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    if "exit_code" in out:
        out["exitCode"] = out.pop("exit_code")
    for key in ("started", "finished"):
        if key in out:
            out[key] = _time(out[key])
    return out


def _time(value: object) -> object:
    when = seconds(value)
    return rfc3339(when) if when is not None and not isinstance(value, str) else value
