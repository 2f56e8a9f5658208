"""spec.notify on this machine: when a local run has ended and been collected, its supervisor posts the
summary to the webhook (runner.agent.notify: bounded retries, never holding the run up). The URL is read
from its reference then, as an attempt's env references are, and never stored."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from runner.agent.notify import RunEnd, notify, wanted
from runner.backends.local import envrefs
from runner.records import RunRecord


def run_end(record: RunRecord) -> RunEnd:
    return RunEnd(
        job=record.job,
        run_id=record.id,
        state=record.state.value,
        message=record.message,
        exit_code=record.exit_code,
        started=record.started,
        finished=record.finished,
        attempt=record.attempts,
        host=socket.gethostname(),
    )


def tell_webhook(
    record: RunRecord,
    settings: dict[str, Any] | None,
    *,
    report: Callable[[str], None],
) -> bool:
    """Post record's end to spec.notify's webhook (settings: LocalLaunch.notify) when its `on` asks
    for this end; what went wrong is reported, never raised. Whether a post was tried."""
    if settings is None or not wanted(settings["on"], record.state.value):
        return False
    try:
        url = envrefs.resolve({envrefs.WEBHOOK: settings["webhook"]})[envrefs.WEBHOOK]
    except envrefs.UnreadableReference as problem:
        report(f"the webhook was not told that run {record.id} {record.state.value}: {problem}")
        return False
    notify(url, run_end(record), report=report)
    return True
