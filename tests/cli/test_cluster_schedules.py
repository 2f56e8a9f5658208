"""`runner schedule ... --backend kubernetes / --cluster` end to end, on the simulated cluster.

The real `runner` command applies a schedule (building and pushing its image to the local registry) as a
CronJob to the fake API server; the simulator's CronJob controller, on its fake clock
(tests/support/sim/clock.py EPOCH: Monday 2025-06-02 00:00 UTC, 02:00 in Berlin), starts its Jobs when
the test moves time past a slot, and the scale runtime "runs" their pods for a simulated minute. The
runner's commands then read those runs like any other. The runner itself runs in real time: what it
computes from the present (a schedule's next run) is checked against the real clock, what the cluster
decides against the fake one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.conftest import Result, status_of
from tests.support.sim.api import is_true
from tests.support.sim.clock import EPOCH
from tests.support.sim.fixtures import REGISTRY, Cluster

Runner = Callable[..., Result]
MakeJob = Callable[..., Path]
BERLIN = ZoneInfo("Europe/Berlin")
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MANAGED = "app.kubernetes.io/managed-by=runner"

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def nightly(job: MakeJob, python_base_image: str, store_secret: str) -> Path:
    """A nightly job at 02:30 Berlin time on a small image (the python stand-in, built once per machine)."""
    return job(
        "nightly",
        image={"base": python_base_image},
        command=["sh", "-c", "echo nightly"],
        schedule={"cron": "30 2 * * *", "timeZone": "Europe/Berlin"},
    )


@pytest.fixture
def on_cluster(cluster: Cluster) -> Cluster:
    """The simulated cluster with one CPU node (the jobs ask for no GPU, so they avoid the GPU taint)."""
    cluster.sim.add_nodes(1, gpus=0, prefix="cpu-node")
    return cluster


def ok(result: Result) -> Result:
    assert result.code == 0, result.output[-3000:]
    return result


def apply(runner: Runner, path: Path) -> Result:
    return ok(runner("schedule", "apply", str(path), "--backend", "kubernetes", timeout=600))


def jobs_of(cluster: Cluster, schedule: str) -> list[dict[str, Any]]:
    """The schedule's Jobs, by name (a CronJob's are named <schedule>-<slot in unix minutes>)."""
    found = cluster.server.list_objects("jobs", cluster.namespace, f"runner.dev/schedule={schedule}")
    return sorted(found, key=lambda job: job["metadata"]["name"])


def scheduled_at(job: dict[str, Any]) -> datetime:
    """The slot the CronJob controller started the Job for (its annotation, in the CronJob's zone)."""
    return datetime.fromisoformat(job["metadata"]["annotations"][SCHEDULED])


def slots_of(cluster: Cluster, schedule: str) -> list[datetime]:
    """The slots of the schedule's Jobs that its CronJob started (a trigger's Job has none)."""
    return [
        scheduled_at(job) for job in jobs_of(cluster, schedule) if SCHEDULED in job["metadata"]["annotations"]
    ]


def at(moment: datetime) -> float:
    """Seconds of fake time from the simulator's now to moment."""
    return (moment - EPOCH).total_seconds()


def schedules_on_cluster(runner: Runner) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = json.loads(
        ok(runner("schedule", "list", "--cluster", "-o", "json")).stdout
    )
    return documents


def next_half_past_two_in_berlin(after: datetime) -> datetime:
    local = after.astimezone(BERLIN)
    candidate = local.replace(hour=2, minute=30, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(hour=2, minute=30, second=0, microsecond=0)
    return candidate


def test_dry_run_prints_the_cronjob_and_sends_nothing(
    runner: Runner, cluster: Cluster, nightly: Path
) -> None:
    result = ok(runner("schedule", "apply", str(nightly), "--backend", "kubernetes", "--dry-run"))
    config_map, cronjob = yaml.safe_load_all(result.stdout)
    assert (config_map["kind"], cronjob["kind"]) == ("ConfigMap", "CronJob")
    assert cronjob["metadata"]["name"] == "nightly"
    assert cronjob["metadata"]["namespace"] == cluster.namespace
    assert cronjob["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "runner"
    assert cronjob["metadata"]["labels"]["runner.dev/schedule"] == "nightly"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        "Forbid",
    )
    (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith(f"{REGISTRY}/runner/nightly:")

    assert cluster.server.list_objects("cronjobs", cluster.namespace) == []
    assert cluster.server.list_objects("configmaps", cluster.namespace, MANAGED) == []


def test_a_cluster_schedule_from_apply_to_delete(runner: Runner, on_cluster: Cluster, nightly: Path) -> None:
    cluster, sim = on_cluster, on_cluster.sim
    applied = apply(runner, nightly)
    assert applied.stdout == f"cronjob.batch/nightly created in {cluster.namespace}\n"

    # kubectl sees it, with the runner's labels.
    shown = cluster.kube.kubectl(
        "get", "cronjobs", "-l", f"{MANAGED},runner.dev/schedule=nightly", "-o", "json"
    )
    assert shown.returncode == 0, shown.stderr
    (cronjob,) = json.loads(shown.stdout)["items"]
    assert cronjob["metadata"]["labels"]["runner.dev/job"] == "nightly"
    table = cluster.kube.kubectl("get", "cronjobs").stdout
    assert re.search(r"^nightly\s+30 2 \* \* \*\s+Europe/Berlin\s+False\s+0\s+<none>", table, re.M), table
    assert apply(runner, nightly).stdout == f"cronjob.batch/nightly configured in {cluster.namespace}\n"

    # 02:30 in Berlin (CEST, UTC+2) is 00:30 UTC: nothing before it, one Job at it, complete a minute later.
    first_slot = datetime(2025, 6, 2, 2, 30, tzinfo=BERLIN)
    sim.advance(at(first_slot) - 1)
    assert jobs_of(cluster, "nightly") == []
    sim.advance(1)
    (job,) = jobs_of(cluster, "nightly")
    assert scheduled_at(job) == first_slot
    run = job["metadata"]["name"]
    sim.advance(120)
    assert is_true(cluster.server.get("jobs", run, cluster.namespace), "Complete")

    listed = json.loads(ok(runner("list", "--cluster", "-o", "json")).stdout)
    (found,) = [entry for entry in listed if entry["id"] == run]
    assert (found["state"], found["backend"]) == ("succeeded", "kubernetes")
    assert found["labels"]["runner.dev/schedule"] == "nightly"

    (view,) = schedules_on_cluster(runner)
    assert (view["name"], view["lastRun"], view["lastResult"], view["suspended"]) == (
        "nightly",
        run,
        "succeeded",
        False,
    )
    # The next run is computed from the real present: the next 02:30 in Berlin.
    before = datetime.now(UTC)
    next_run = datetime.fromisoformat(view["nextRun"])
    assert next_run.astimezone(BERLIN).strftime("%H:%M") == "02:30"
    assert before < next_run <= next_half_past_two_in_berlin(before)
    row = ok(runner("schedule", "list", "--cluster")).stdout.splitlines()[1]
    cells = re.split(r"\s{2,}", row)
    assert cells[:5] == ["nightly", f"kubernetes/{cluster.namespace}", "30 2 * * *", "Europe/Berlin", "no"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 02:30 CES?T", cells[5]), row
    assert cells[6:] == [run, "succeeded"]

    # Paused: the next night's slot starts nothing.
    assert ok(runner("schedule", "pause", "nightly", "--cluster")).stdout == "cronjob.batch/nightly paused\n"
    assert cluster.server.get("cronjobs", "nightly", cluster.namespace)["spec"]["suspend"] is True
    (view,) = schedules_on_cluster(runner)
    assert (view["suspended"], view["nextRun"]) == (True, None)
    sim.advance(at(datetime(2025, 6, 3, 4, 31, tzinfo=BERLIN)) - at(sim.clock.now()))
    assert [job["metadata"]["name"] for job in jobs_of(cluster, "nightly")] == [run]

    # Resumed two hours after the missed slot: older than the CronJob's startingDeadlineSeconds (1h by
    # default), so Kubernetes does not start it late; the following night runs.
    assert (
        ok(runner("schedule", "resume", "nightly", "--cluster")).stdout == "cronjob.batch/nightly resumed\n"
    )
    sim.settle()
    assert len(jobs_of(cluster, "nightly")) == 1
    third_slot = datetime(2025, 6, 4, 2, 30, tzinfo=BERLIN)
    sim.advance(at(third_slot) - at(sim.clock.now()) + 90)
    assert slots_of(cluster, "nightly") == [first_slot, third_slot]

    # A trigger: a run now, whatever the slots, that runner status knows at once.
    triggered = ok(runner("schedule", "trigger", "nightly", "--cluster")).stdout.strip()
    assert re.fullmatch(r"nightly-[a-z0-9]{6}", triggered), triggered
    status = status_of(triggered)
    assert status["backend"] == "kubernetes" and status["labels"]["runner.dev/schedule"] == "nightly"
    assert status["state"] in ("pending", "running")
    sim.advance(120)
    assert status_of(triggered)["state"] == "succeeded"
    assert schedules_on_cluster(runner)[0]["lastRun"] == triggered

    # Resumed within the startingDeadlineSeconds of a slot missed while paused: Kubernetes starts it late,
    # at once (only slots older than the deadline stay missed).
    ok(runner("schedule", "pause", "nightly", "--cluster"))
    fourth_slot = datetime(2025, 6, 5, 2, 30, tzinfo=BERLIN)
    sim.advance(at(fourth_slot) - at(sim.clock.now()) + 600)
    assert fourth_slot not in slots_of(cluster, "nightly")
    ok(runner("schedule", "resume", "nightly", "--cluster"))
    sim.settle()
    assert fourth_slot in slots_of(cluster, "nightly")

    # Delete: the CronJob now; its ConfigMap and Jobs follow by garbage collection.
    deleted = ok(runner("schedule", "delete", "nightly", "--cluster"))
    assert deleted.stdout == "cronjob.batch/nightly deleted\n"
    sim.settle()
    assert cluster.server.find("cronjobs", "nightly", cluster.namespace) is None
    assert cluster.server.list_objects("configmaps", cluster.namespace, "runner.dev/schedule=nightly") == []
    assert jobs_of(cluster, "nightly") == []
    assert schedules_on_cluster(runner) == []
    gone = runner("schedule", "trigger", "nightly", "--cluster")
    assert gone.code == 1, gone.output
    assert f"error: no schedule 'nightly' in namespace {cluster.namespace}" in gone.stderr
    assert "Traceback" not in gone.output


def test_unknown_or_unschedulable_is_refused_with_the_hint(
    runner: Runner, cluster: Cluster, job: MakeJob
) -> None:
    for verb in ("pause", "resume", "trigger", "delete"):
        result = runner("schedule", verb, "ghost", "--cluster")
        assert result.code == 1, result.output
        assert result.stderr == (
            f"error: no schedule 'ghost' in namespace {cluster.namespace}\n"
            f"hint: `runner schedule list -n {cluster.namespace}` shows the schedules there\n"
        )
    once = job("once", command=["true"])
    refused = runner("schedule", "apply", str(once), "--backend", "kubernetes")
    assert refused.code == 2, refused.output
    assert "the manifest has no spec.schedule" in refused.stderr and "hint: add one" in refused.stderr
    assert cluster.server.list_objects("cronjobs", cluster.namespace) == []
    empty = ok(runner("schedule", "list", "--cluster"))
    assert empty.stdout == "" and "--backend kubernetes" in empty.stderr


def test_a_nightly_schedule_across_the_spring_forward_night_in_berlin(
    runner: Runner, on_cluster: Cluster, nightly: Path
) -> None:
    """What Kubernetes does with `30 2 * * *` in Europe/Berlin across the last Sunday of March.

    On 2026-03-29 Berlin's clocks jump from 02:00 CET to 03:00 CEST: 02:30 does not exist that night.
    The CronJob controller computes slots with robfig/cron v3 (`schedule.Next` in the CronJob's
    timeZone), which walks wall-clock hours and never lands on a skipped one: that night has no slot
    (robfig/cron's spec_test.go: "2am nightly job (skipped)"). So the schedule runs once on each other
    night, at 02:30 local time (01:30 UTC before the change, 00:30 UTC after), and not on the 29th.
    """
    cluster, sim = on_cluster, on_cluster.sim
    apply(runner, nightly)
    # As if the control plane had been away until the 27th: the slot it missed is over an hour old (the
    # startingDeadlineSeconds), so nothing starts late.
    sim.jump(at(datetime(2026, 3, 27, 0, 0, tzinfo=BERLIN)))
    assert jobs_of(cluster, "nightly") == []

    seen: dict[str, datetime] = {}
    for _ in range(4):  # the nights of the 27th, 28th, 29th and 30th
        sim.advance(86400)
        seen.update({job["metadata"]["name"]: scheduled_at(job) for job in jobs_of(cluster, "nightly")})
    slots = sorted(seen.values())
    assert [slot.astimezone(UTC) for slot in slots] == [
        datetime(2026, 3, 27, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST; the 29th had no 02:30
    ]
    assert all(slot.astimezone(BERLIN).strftime("%H:%M") == "02:30" for slot in slots)


def test_a_nightly_schedule_across_the_fall_back_night_in_berlin(
    runner: Runner, on_cluster: Cluster, nightly: Path
) -> None:
    """On 2026-10-25 Berlin's clocks go back from 03:00 CEST to 02:00 CET: 02:30 comes twice. robfig/cron
    walks the wall clock forward in time and meets 02:30 at 00:30 UTC and again at 01:30 UTC, so the
    CronJob runs twice that night (robfig/cron's spec_test.go: "1am nightly job (runs twice)" in New
    York, where 01:xx repeats); each run is its own Job (<name>-<slot in unix minutes>)."""
    cluster, sim = on_cluster, on_cluster.sim
    apply(runner, nightly)
    sim.jump(at(datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)))
    seen: dict[str, datetime] = {}
    for _ in range(48):  # hour by hour, so that both runs of the night are seen before any is cleaned up
        sim.advance(3600)
        seen.update({job["metadata"]["name"]: scheduled_at(job) for job in jobs_of(cluster, "nightly")})
    assert sorted(slot.astimezone(UTC) for slot in seen.values()) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET, the same wall-clock time again
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET
    ]
