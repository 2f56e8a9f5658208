"""A word when a run ends: the summary, the retries, and the agent posting to a local receiver."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from runner.agent.notify import RunEnd, notify, post, summary, wanted
from tests.agent.running import run_agent
from tests.support.webhook import SECRET_PATH, Receiver

END = RunEnd(
    job="mnist",
    run_id="mnist-k3x9q2",
    state="failed",
    message="exited with code 3 <@channel>",
    exit_code=3,
    started=100.0,
    finished=225.0,
    attempt=2,
    host="gpu-node-1",
)


def test_the_summary_is_one_line_of_slack_text_and_the_same_as_data() -> None:
    payload = summary(END)
    assert payload["text"] == (
        ":x: run mnist-k3x9q2 of job mnist failed after 2m05s (attempt 2, exit code 3): "
        "exited with code 3 &lt;@channel&gt;"  # a job's message pings nobody
    )
    assert payload["runner"]["state"] == "failed" and payload["runner"]["exitCode"] == 3


def test_on_names_which_ends_are_told() -> None:
    assert wanted(["failed"], "timed-out") and wanted(["failed"], "lost")
    assert not wanted(["failed"], "succeeded")
    assert wanted(["cancelled"], "cancelled") and not wanted(["failed", "succeeded"], "cancelled")


def test_a_busy_receiver_is_asked_again_with_backoff(receiver: Receiver) -> None:
    receiver.statuses = [503, 429]
    slept: list[float] = []
    assert post(receiver.url, summary(END), sleep=slept.append) is None
    assert len(receiver.received) == 3 and slept == [1.0, 2.0]
    assert receiver.received[-1] == summary(END)
    assert receiver.headers[-1]["Content-Type"] == "application/json"


def test_a_refusal_is_not_retried_and_the_secret_url_is_never_said(receiver: Receiver) -> None:
    receiver.statuses = [404]
    problem = post(receiver.url, summary(END), sleep=lambda seconds: None)
    assert problem == "127.0.0.1 answered 404"
    assert len(receiver.received) == 1


def test_a_receiver_that_is_down_is_tried_a_few_times() -> None:
    slept: list[float] = []
    problem = post("http://127.0.0.1:9/hook", summary(END), sleep=slept.append, timeout=1)
    assert problem is not None and problem.startswith("127.0.0.1 could not be reached")
    assert problem.endswith("(tried 3 times)") and slept == [1.0, 2.0]


def test_a_hanging_webhook_never_holds_up_the_end_of_the_run() -> None:
    release = threading.Event()
    said: list[str] = []

    def hangs(url: str, payload: dict[str, Any]) -> str | None:
        release.wait(60)
        return None

    notify("http://127.0.0.1:9/", END, report=said.append, deadline=0.05, send=hangs)
    release.set()
    assert said == ["the webhook did not answer within 0.05s; the run ended without its word"]


def agent(tmp_path: Path, script: str, **settings: str) -> subprocess.CompletedProcess[str]:
    run = {
        "RUNNER_STORE": (tmp_path / "store").as_uri(),
        "RUNNER_JOB": "mnist",
        "RUNNER_RUN_ID": "mnist-k3x9q2",
    }
    return run_agent(tmp_path, script, {**run, **settings}, timeout=60)


def test_the_agent_tells_the_webhook_of_a_failed_run_and_keeps_the_url_to_itself(
    tmp_path: Path, receiver: Receiver
) -> None:
    done = agent(
        tmp_path,
        'echo "job sees ${RUNNER_NOTIFY_WEBHOOK:-no webhook}"; exit 3',
        RUNNER_NOTIFY_WEBHOOK=receiver.url,
        RUNNER_NOTIFY_ON="failed",
        RUNNER_ATTEMPT="2",
        RUNNER_MAX_ATTEMPTS="2",
    )
    assert done.returncode == 3
    assert "job sees no webhook" in done.stdout
    (told,) = receiver.received
    assert told["runner"]["run"] == "mnist-k3x9q2" and told["runner"]["state"] == "failed"
    assert told["text"].startswith(":x: run mnist-k3x9q2 of job mnist failed")
    stored = "".join(path.read_text() for path in (tmp_path / "store").rglob("*") if path.is_file())
    assert SECRET_PATH not in stored + done.stdout + done.stderr


def test_a_failed_attempt_with_retries_left_and_an_end_not_asked_for_are_not_told(
    tmp_path: Path, receiver: Receiver
) -> None:
    retried = agent(tmp_path, "exit 1", RUNNER_NOTIFY_WEBHOOK=receiver.url, RUNNER_MAX_ATTEMPTS="3")
    succeeded = agent(tmp_path, "true", RUNNER_NOTIFY_WEBHOOK=receiver.url, RUNNER_NOTIFY_ON="failed")
    assert (retried.returncode, succeeded.returncode) == (1, 0)
    assert receiver.received == []


def test_a_webhook_that_is_down_is_a_warning_and_the_run_s_code_stands(tmp_path: Path) -> None:
    done = agent(tmp_path, "true", RUNNER_NOTIFY_WEBHOOK="http://127.0.0.1:9" + SECRET_PATH)
    assert done.returncode == 0
    assert "runner-agent: warning: could not tell the webhook that run mnist-k3x9q2 succeeded" in done.stderr
    assert SECRET_PATH not in done.stderr
