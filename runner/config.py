"""Settings from the environment, resolved once per command.

RUNNER_HOME      where run records and per-run work directories live (default ~/.runner)
RUNNER_STORE     the artifact store URL (default file://$RUNNER_HOME/store)
RUNNER_BACKOFF   seconds before the first retry of a local run; doubles per retry (default 10)
RUNNER_GRACE     seconds between SIGTERM and SIGKILL when a local run is stopped (default 10)
RUNNER_BACKEND   the backend `runner submit` uses without --backend (default auto)
RUNNER_REGISTRY  where job images are pushed, e.g. 127.0.0.1:5000 (default: none, images stay local)
RUNNER_STORE_SECRET  the Secret holding the s3:// store's credentials for cluster pods (default: none)
RUNNER_MAX_CONTEXT   the most a job's build context may hold, .dockerignore applied (default 2Gi)
RUNNER_MAX_OUTPUTS   the most one run's outputs may hold in the store, files beyond refused (default 50Gi)

Sizes are bytes or a number with a unit (Ki, Mi, Gi, Ti; K, M, G, T are powers of 1000), like 2Gi or 500M;
`none` lifts the cap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# A build context is code and small files: data sets belong in spec.inputs, and 2 GiB is already more than
# `docker build` sends comfortably (the image holds a copy, each process run another). Far larger than any
# example job's context (a few MiB), far smaller than what `context: /` or a context holding a data set is.
DEFAULT_MAX_CONTEXT = 2 * 1024**3
# One run's outputs: the models, checkpoints and metrics it saves. A multi-GB saved model with a few
# checkpoints fits; a job writing without end (or a sparse file of 1 TiB) cannot fill the store's disk.
DEFAULT_MAX_OUTPUTS = 50 * 1024**3
NO_LIMIT = 2**63 - 1  # what `none` means: no cap
_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_UNITS.update({"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4})
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?|)B?\s*")


@dataclass(frozen=True)
class Settings:
    home: Path
    store_url: str
    backoff_seconds: float
    grace_seconds: float
    backend: str = "auto"
    registry: str | None = None
    store_secret: str | None = None
    max_context_bytes: int = DEFAULT_MAX_CONTEXT
    max_outputs_bytes: int = DEFAULT_MAX_OUTPUTS

    @property
    def database(self) -> Path:
        return self.home / "runs.db"

    @property
    def work_root(self) -> Path:
        return self.home / "runs"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        from runner.errors import UserError

        raise UserError(
            f"{name}={raw!r} is not a number of seconds", hint=f"unset {name} or set it to e.g. 10"
        )
    return value


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() == "none":
        return NO_LIMIT
    match = _SIZE.fullmatch(raw)
    if match is None or match.group(2) == "ki":
        from runner.errors import UserError

        raise UserError(
            f"{name}={raw!r} is not a size", hint=f"unset {name}, or set it to e.g. 2Gi, 500Mi or none"
        )
    return min(int(float(match.group(1)) * _UNITS[match.group(2)]), NO_LIMIT)


def max_context_bytes(env: Mapping[str, str] | None = None) -> int:
    """RUNNER_MAX_CONTEXT: the most a build context may hold (NO_LIMIT when `none`)."""
    return _size(os.environ if env is None else env, "RUNNER_MAX_CONTEXT", DEFAULT_MAX_CONTEXT)


def max_outputs_bytes(env: Mapping[str, str] | None = None) -> int:
    """RUNNER_MAX_OUTPUTS: the most one run's outputs may hold in the store (NO_LIMIT when `none`)."""
    return _size(os.environ if env is None else env, "RUNNER_MAX_OUTPUTS", DEFAULT_MAX_OUTPUTS)


def format_size(size: int) -> str:
    """A size as people read it: 512 B, 1.5 KiB, 2.0 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("RUNNER_HOME") or Path.home() / ".runner").expanduser().absolute()
    store_url = env.get("RUNNER_STORE") or (home / "store").as_uri()
    return Settings(
        home=home,
        store_url=store_url,
        backoff_seconds=_seconds(env, "RUNNER_BACKOFF", 10.0),
        grace_seconds=_seconds(env, "RUNNER_GRACE", 10.0),
        backend=env.get("RUNNER_BACKEND") or "auto",
        registry=env.get("RUNNER_REGISTRY") or None,
        store_secret=env.get("RUNNER_STORE_SECRET") or None,
        max_context_bytes=max_context_bytes(env),
        max_outputs_bytes=max_outputs_bytes(env),
    )
