"""The simulated CronJob controller on the fake clock."""

from __future__ import annotations

from tests.support.apiserver import resources
from tests.support.sim.builders import cronjob, gpu_job
from tests.support.sim.fixtures import Cluster

CRONJOBS = resources.lookup("cronjobs")


def job_names(cluster: Cluster) -> list[str]:
    return sorted(j["metadata"]["name"] for j in cluster.server.list_objects("jobs"))


def minutes(hour: int, minute: int = 0, day: int = 2) -> int:
    """The name suffix of a slot on June <day> 2025, UTC (the fake clock starts on June 2, 00:00)."""
    base = 1748822400 // 60  # 2025-06-02T00:00:00Z
    return base + (day - 2) * 1440 + hour * 60 + minute


def test_a_slot_starts_a_job_named_and_annotated_as_kubernetes_does(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("nightly", "0 2 * * *", timeZone="Asia/Seoul"))
    cluster.sim.advance(17 * 3600 - 1)
    assert job_names(cluster) == []

    cluster.sim.advance(1)  # 17:00 UTC is 02:00 in Seoul

    [job] = cluster.server.list_objects("jobs")
    assert job["metadata"]["name"] == f"nightly-{minutes(17)}"
    assert job["metadata"]["annotations"] == {
        "note": "nightly",
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-06-03T02:00:00+09:00",
    }
    assert job["metadata"]["labels"] == {"runner.dev/schedule": "nightly"}
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "nightly", True)
    status = cluster.server.get("cronjobs", "nightly")["status"]
    assert status["lastScheduleTime"] == "2025-06-02T17:00:00Z"
    assert [ref["name"] for ref in status["active"]] == [job["metadata"]["name"]]

    cluster.sim.advance(60)
    status = cluster.server.get("cronjobs", "nightly")["status"]
    assert "active" not in status and status["lastSuccessfulTime"] == "2025-06-02T17:01:00Z"


def test_forbid_waits_for_the_running_job_then_starts_the_missed_slot(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(
        cronjob("hourly", "0 * * * *", gpu_job("x", seconds=5400), concurrencyPolicy="Forbid")
    )
    cluster.sim.advance(3600)
    cluster.sim.advance(3600)  # 02:00: the 01:00 job runs until 02:30
    assert job_names(cluster) == [f"hourly-{minutes(1)}"]

    cluster.sim.advance(1800)

    assert job_names(cluster) == [f"hourly-{minutes(1)}", f"hourly-{minutes(2)}"]
    second = cluster.server.get("jobs", f"hourly-{minutes(2)}")
    assert second["status"]["startTime"] == "2025-06-02T02:30:00Z"


def test_replace_deletes_the_running_job(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(
        cronjob("hourly", "0 * * * *", gpu_job("x", seconds=5400), concurrencyPolicy="Replace")
    )
    cluster.sim.advance(7200)
    assert job_names(cluster) == [f"hourly-{minutes(2)}"]
    assert len(cluster.server.list_objects("pods")) == 1


def test_allow_runs_them_side_by_side(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("hourly", "0 * * * *", gpu_job("x", seconds=5400)))
    cluster.sim.advance(7200)
    assert job_names(cluster) == [f"hourly-{minutes(1)}", f"hourly-{minutes(2)}"]
    active = cluster.server.get("cronjobs", "hourly")["status"]["active"]
    assert len(active) == 2


def test_after_downtime_only_the_latest_missed_slot_runs_once(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("often", "*/10 * * * *"))
    cluster.sim.settle()

    cluster.sim.jump(3 * 3600 + 5 * 60)  # down from 00:00 to 03:05

    assert job_names(cluster) == [f"often-{minutes(3)}"]
    cluster.sim.advance(60)
    assert job_names(cluster) == [f"often-{minutes(3)}"]
    cluster.sim.advance(5 * 60)
    assert job_names(cluster) == [f"often-{minutes(3)}", f"often-{minutes(3, 10)}"]


def test_a_slot_older_than_the_starting_deadline_is_skipped(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("strict", "0 * * * *", startingDeadlineSeconds=300))
    cluster.sim.settle()
    cluster.sim.jump(3600 + 600)  # 01:10: the 01:00 slot is 10 minutes late
    assert job_names(cluster) == []
    cluster.sim.advance(3000)
    assert job_names(cluster) == [f"strict-{minutes(2)}"]


def test_a_suspended_cronjob_starts_nothing(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("held", "0 * * * *", suspend=True))
    cluster.sim.advance(3 * 3600)
    assert job_names(cluster) == []
    cluster.server.store.patch(CRONJOBS, cluster.namespace, "held", "merge", {"spec": {"suspend": False}})
    cluster.sim.settle()
    assert job_names(cluster) == [f"held-{minutes(3)}"]  # the latest missed slot, no deadline set


def test_history_limits_keep_the_newest_finished_jobs(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(cronjob("ok", "0 * * * *", gpu_job("x", seconds=60), successfulJobsHistoryLimit=2))
    cluster.server.create(cronjob("bad", "0 * * * *", gpu_job("y", seconds=60, exit_code=1)))
    cluster.sim.advance(5 * 3600 + 120)

    assert job_names(cluster) == [f"bad-{minutes(5)}", f"ok-{minutes(4)}", f"ok-{minutes(5)}"]
    deleted = [
        e["message"]
        for e in cluster.server.list_objects("events")
        if e["involvedObject"]["name"] == "ok" and e["reason"] == "SuccessfulDelete"
    ]
    assert deleted == [f"Deleted job ok-{minutes(h)}" for h in (1, 2, 3)]
