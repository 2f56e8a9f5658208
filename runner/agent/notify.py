"""A word when a run ends: a short Slack-compatible JSON summary posted to the job's webhook.

summary() and wanted() are pure; post() sends with a few retries (timeouts, 429 and 5xx are retried,
other refusals are not) and reports, never raises; notify() runs post() on a thread and waits at most
a deadline, so a webhook that hangs never holds up the end of a run. The URL is a secret: messages
name its host only.

The payload: "text" (what Slack, Mattermost and the like show) and "runner" (the same as data).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

TRIES = 3
TIMEOUT_SECONDS = 5.0
BACKOFF_SECONDS = 1.0
DEADLINE_SECONDS = 30.0
EVENTS = ("succeeded", "failed", "cancelled")
# which run states each event of spec.notify.on stands for
EVENT_OF_STATE = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timed-out": "failed",
    "lost": "failed",
    "cancelled": "cancelled",
}
MARKS = {"succeeded": ":white_check_mark:", "failed": ":x:", "cancelled": ":no_entry_sign:"}


@dataclass(frozen=True)
class RunEnd:
    job: str
    run_id: str
    state: str  # succeeded, failed, timed-out, lost, cancelled
    message: str
    exit_code: int | None
    started: float | None
    finished: float | None
    attempt: int
    host: str


def wanted(on: Collection[str], state: str) -> bool:
    """Whether spec.notify.on asks to be told of a run that ended in state."""
    event = EVENT_OF_STATE.get(state)
    return event is not None and event in on


def _slack_text(text: str) -> str:
    """Slack's three control characters escaped: a job's message cannot ping or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(end: RunEnd) -> dict[str, Any]:
    took = ""
    if end.started is not None and end.finished is not None:
        took = f" after {_duration(end.finished - end.started)}"
    mark = MARKS.get(EVENT_OF_STATE.get(end.state, ""), "")
    text = (
        f"{mark} run {end.run_id} of job {end.job} {end.state}{took}"
        f" (attempt {end.attempt}, exit code {end.exit_code if end.exit_code is not None else '-'}):"
        f" {end.message}"
    ).strip()
    return {
        "text": _slack_text(text),
        "runner": {
            "job": end.job,
            "run": end.run_id,
            "state": end.state,
            "message": end.message,
            "exitCode": end.exit_code,
            "attempt": end.attempt,
            "started": end.started,
            "finished": end.finished,
            "host": end.host,
        },
    }


def _duration(seconds: float) -> str:
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, seconds_left = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds_left:02d}s" if minutes else f"{seconds_left}s"


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or "the webhook"


Opener = Callable[..., Any]


def post(
    url: str,
    payload: dict[str, Any],
    *,
    tries: int = TRIES,
    timeout: float = TIMEOUT_SECONDS,
    backoff: float = BACKOFF_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    opener: Opener = urllib.request.urlopen,
) -> str | None:
    """POST payload as JSON; None when it was taken, else why not (the URL itself never said)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "the webhook is not an http(s) URL"
    body = json.dumps(payload).encode()
    problem = "not sent"
    for attempt in range(1, tries + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with opener(request, timeout=timeout) as response:
                response.read()
            return None
        except urllib.error.HTTPError as error:
            problem = f"{_host(url)} answered {error.code}"
            if error.code != 429 and error.code < 500:
                return problem  # refused: asking again gets the same answer
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            problem = f"{_host(url)} could not be reached: {reason}"
        if attempt < tries:
            sleep(backoff * 2 ** (attempt - 1))
    return f"{problem} (tried {tries} times)"


def notify(
    url: str,
    end: RunEnd,
    *,
    report: Callable[[str], None],
    deadline: float = DEADLINE_SECONDS,
    send: Callable[[str, dict[str, Any]], str | None] = post,
) -> None:
    """Send the run's summary on a thread; wait for it at most deadline seconds, then go on without it."""
    outcome: list[str | None] = []
    thread = threading.Thread(
        target=lambda: outcome.append(send(url, summary(end))), name="runner-notify", daemon=True
    )
    thread.start()
    thread.join(deadline)
    if not outcome:
        report(f"the webhook did not answer within {deadline:g}s; the run ended without its word")
    elif outcome[0] is not None:
        report(f"could not tell the webhook that run {end.run_id} {end.state}: {outcome[0]}")
