"""Settings from the environment, resolved once per command.

RUNNER_HOME      where run records and per-run work directories live (default ~/.runner)
RUNNER_STORE     the artifact store URL (default file://$RUNNER_HOME/store)
RUNNER_BACKOFF   seconds before the first retry of a local run; doubles per retry (default 10)
RUNNER_GRACE     seconds between SIGTERM and SIGKILL when a local run is stopped (default 10)
RUNNER_BACKEND   the backend `runner submit` uses without --backend (default auto)
RUNNER_REGISTRY  where job images are pushed, e.g. 127.0.0.1:5000 (default: none, images stay local)
RUNNER_STORE_SECRET  the Secret holding the s3:// store's credentials for cluster pods (default: none)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    store_url: str
    backoff_seconds: float
    grace_seconds: float
    backend: str = "auto"
    registry: str | None = None
    store_secret: str | None = None

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
    )
