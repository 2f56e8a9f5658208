"""The agent's inputs: fetched from object storage into the inputs' paths before the command starts.

RUNNER_INPUTS    JSON, {"NAME": {"source": "s3://bucket/prefix", "path": "/data/NAME"}, ...}: the inputs
                 the agent fetches (the cluster renderer sets it for s3:// inputs and for local inputs
                 uploaded into the store; pvc:// inputs are mounted, not fetched)

Each is downloaded into its path (an empty directory the pod mounts there), every file checked against
its listed size, the store's sha256 where it keeps one, and the prefix's index where it has one (a local
input uploaded by `runner submit`). Parsing is pure (parse_inputs); fetch_inputs does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.store.inputs import fetch_prefix, open_source

VARIABLE = "RUNNER_INPUTS"


class InputsError(Exception):
    """RUNNER_INPUTS cannot be read, or an input cannot be fetched: the attempt fails before its command."""


@dataclass(frozen=True)
class Fetch:
    name: str
    source: str
    path: Path


def parse_inputs(text: str | None) -> list[Fetch]:
    """RUNNER_INPUTS as the inputs to fetch, in name order; [] when it is unset or empty."""
    if not text or not text.strip():
        return []
    try:
        loaded = json.loads(text)
    except ValueError as error:
        raise InputsError(f"{VARIABLE} is not JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise InputsError(f"{VARIABLE}: expected an object of inputs by name")
    fetches: list[Fetch] = []
    for name, entry in sorted(loaded.items()):
        if not isinstance(entry, dict):
            raise InputsError(f"{VARIABLE}: input {name!r}: expected {{source, path}}")
        source, path = entry.get("source"), entry.get("path")
        if not isinstance(source, str) or not source.startswith("s3://"):
            raise InputsError(f"{VARIABLE}: input {name!r}: the agent fetches s3:// sources, not {source!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InputsError(f"{VARIABLE}: input {name!r}: expected an absolute path, not {path!r}")
        fetches.append(Fetch(name, source, Path(path)))
    return fetches


def fetch_inputs(env: Mapping[str, str], report: Callable[[str], None]) -> str | None:
    """Fetch every input RUNNER_INPUTS names; None when all are in place, else why not (one line)."""
    try:
        for item in parse_inputs(env.get(VARIABLE)):
            what = f"input {item.name!r}"
            store, key = open_source(item.source, what)
            fetch_prefix(store, key, item.path, what, report)
    except InputsError as problem:
        return str(problem)
    except RunnerError as problem:
        return problem.message + (f" ({problem.hint})" if problem.hint else "")
    except OSError as problem:
        return f"cannot write the inputs: {problem}"
    return None
