"""spec.notify on this machine: the supervisor tells the webhook when a local run has ended and been
collected, reading the URL from its reference then; a reference it cannot read is said at submit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, write_job
from tests.support.webhook import SECRET_PATH, Receiver


def notify_job(directory: Path, command: str, on: list[str]) -> Path:
    return write_job(
        directory,
        name="told",
        command=["sh", "-c", command],
        notify={"webhook": {"fromEnv": "HOOK"}, "on": on},
    )


def received_within(receiver: Receiver, seconds: float) -> list[dict[str, object]]:
    """The supervisor posts after submit has returned: wait for it (a real process, a real socket)."""
    deadline = time.monotonic() + seconds
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    return receiver.received


def test_a_failed_local_run_is_told_to_the_webhook_without_the_url_stored(
    tmp_path: Path, home: Path, receiver: Receiver, runner: Callable[..., Result]
) -> None:
    job = notify_job(tmp_path / "job", "echo training; exit 3", ["failed"])
    result = runner("submit", str(job), env={"HOOK": receiver.url})
    assert result.code == 3, result.output
    (told,) = received_within(receiver, 20)
    assert told["runner"]["state"] == "failed"  # type: ignore[index]
    assert told["runner"]["exitCode"] == 3  # type: ignore[index]
    assert told["runner"]["job"] == "told"  # type: ignore[index]
    stored = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    assert SECRET_PATH.encode() not in stored  # neither runs.db, the work dir nor the store hold it


def test_an_end_not_asked_for_is_not_told(
    tmp_path: Path, home: Path, receiver: Receiver, runner: Callable[..., Result]
) -> None:
    job = notify_job(tmp_path / "job", "echo fine", ["failed"])
    result = runner("submit", str(job), env={"HOOK": receiver.url})
    assert result.code == 0, result.output
    time.sleep(1.0)  # the supervisor has ended (submit waited for collection): nothing may come
    assert receiver.received == []


def test_an_unset_webhook_variable_is_refused_at_submit(
    tmp_path: Path, home: Path, runner: Callable[..., Result]
) -> None:
    job = notify_job(tmp_path / "job", "echo fine", ["failed", "succeeded"])
    result = runner("submit", str(job))  # HOOK is not set here
    assert result.code == 2, result.output
    assert "spec.notify.webhook: fromEnv" in result.stderr
    assert "Traceback" not in result.output
