"""A run exists from the moment of submit: building while its image is made, taken over by its launch;
a build that fails, is cancelled or whose builder dies ends the run, its build log in the store.

A fake backend stands in for the build here (it can be made to fail, block or be interrupted at will);
test_building_docker.py does the same through `runner` with real image builds.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from runner.backends import LogChunk, RunPlan
from runner.config import Settings, load_settings
from runner.errors import RunnerError
from runner.images.engine import BuildError
from runner.records import RunRecord, RunRecords, RunState
from runner.service import building, waiting
from runner.service.building import Builds
from runner.service.plan import plan_run
from runner.spec import load_manifest
from tests.conftest import store_dir, write_job
from tests.support.fakes import FakeClock

Step = Callable[[], None]


@dataclass
class FakeBuilder:
    """prepare says two steps, then does during_build; launch does during_launch, then records the run
    pending, as a backend's launch does."""

    seen: list[RunState] = field(default_factory=list)  # the run's state as prepare found it
    during_build: Step = lambda: None
    during_launch: Step = lambda: None
    name: str = "fake"

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        self.seen.append(RunRecords(settings.database).get(plan.run_id).state)
        progress("[1/2] base image")
        progress("[2/2] copying the job's files")
        self.during_build()
        return plan

    def cancel(self, record: RunRecord, records: RunRecords, settings: Settings) -> None:
        records.update(record.id, state=RunState.CANCELLED, message="cancelled by its backend")

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        self.during_launch()
        record = RunRecord(
            id=plan.run_id,
            job=plan.manifest.name,
            backend=self.name,
            state=RunState.PENDING,
            created=1.0,
            workdir=str(settings.home / "work" / plan.run_id),
            store_url=settings.store_url,
            manifest=plan.manifest_text,
        )
        records.create(record)
        return record


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def builds(settings: Settings) -> Iterator[Builds]:
    made = Builds(RunRecords(settings.database), settings, FakeClock())
    yield made
    for record in made.records.list():
        if record.supervisor_pid == os.getpid():  # this test was the builder: it need not end to be done
            made.records.update(record.id, supervisor_pid=None, supervisor_start=None)


@pytest.fixture
def plan(tmp_path: Path, home: Path) -> RunPlan:
    return plan_run(load_manifest(write_job(tmp_path / "jobs" / "demo", "demo")), {})


def build(builds: Builds, plan: RunPlan, builder: FakeBuilder) -> tuple[RunRecord, list[str]]:
    said: list[str] = []
    record = builds.begin(plan, builder.name)
    return builds.build_and_launch(record, plan, builder, said.append), said  # type: ignore[arg-type]


def stored_build_log(home: Path, run: str) -> str:
    return (store_dir(home, "demo", run) / "logs" / "build.log").read_text()


def iter_of(make: Callable[[RunRecord], list[LogChunk]]) -> Callable[[RunRecord], Iterator[LogChunk]]:
    return lambda record: iter(make(record))


def fail(error: BaseException) -> Step:
    def raise_it() -> None:
        raise error

    return raise_it


def test_a_run_is_building_while_its_image_is_made_and_its_launch_takes_it_over(
    builds: Builds, plan: RunPlan
) -> None:
    builder = FakeBuilder()
    launched, said = build(builds, plan, builder)
    assert builder.seen == [RunState.BUILDING]
    assert said == ["[1/2] base image", "[2/2] copying the job's files"]
    assert (launched.id, launched.state, launched.backend) == (plan.run_id, RunState.PENDING, "fake")
    assert builds.records.get(plan.run_id).workdir.endswith(plan.run_id)
    assert len(builds.records.list()) == 1


def test_a_failed_build_is_a_failed_run_with_its_build_log_in_the_store(
    builds: Builds, plan: RunPlan, home: Path
) -> None:
    broken = BuildError("step 2 failed: COPY failed\nmore detail", hint="check the context")
    with pytest.raises(BuildError):
        build(builds, plan, FakeBuilder(during_build=fail(broken)))
    run = builds.records.get(plan.run_id)
    assert (run.state, run.message) == (RunState.FAILED, "its build failed: step 2 failed: COPY failed")
    assert building.ended_building(run) and run.finished is not None
    assert stored_build_log(home, plan.run_id).splitlines() == [
        "[1/2] base image",
        "[2/2] copying the job's files",
        "its build failed: step 2 failed: COPY failed",
        "more detail",
        "hint: check the context",
    ]


def test_a_failed_launch_says_so(builds: Builds, plan: RunPlan, home: Path) -> None:
    with pytest.raises(RunnerError):
        build(builds, plan, FakeBuilder(during_launch=fail(RunnerError("the registry refused the push"))))
    run = builds.records.get(plan.run_id)
    assert (run.state, run.message) == (RunState.FAILED, "its launch failed: the registry refused the push")


def test_ctrl_c_while_building_cancels_the_run(builds: Builds, plan: RunPlan, home: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        build(builds, plan, FakeBuilder(during_build=fail(KeyboardInterrupt())))
    run = builds.records.get(plan.run_id)
    assert (run.state, run.message) == (RunState.CANCELLED, building.CANCELLED_MESSAGE)
    assert stored_build_log(home, plan.run_id).endswith(f"{building.CANCELLED_MESSAGE}\n")


def test_sigterm_during_the_launch_lets_it_finish_then_cancels_the_launched_run(
    builds: Builds, plan: RunPlan
) -> None:
    def terminated() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # `runner cancel` of the building run, mid-launch

    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL in `runner`; whatever pytest has here
    with pytest.raises(KeyboardInterrupt):
        build(builds, plan, FakeBuilder(during_launch=terminated))
    cancelled = builds.records.get(plan.run_id)
    assert (cancelled.state, cancelled.message) == (RunState.CANCELLED, "cancelled by its backend")
    assert signal.getsignal(signal.SIGTERM) is before, "the handler it had is back"


def test_sigterm_while_building_cancels_the_run(builds: Builds, plan: RunPlan) -> None:
    with pytest.raises(KeyboardInterrupt):
        build(builds, plan, FakeBuilder(during_build=lambda: os.kill(os.getpid(), signal.SIGTERM)))
    assert builds.records.get(plan.run_id).state is RunState.CANCELLED


def test_a_store_that_cannot_take_the_build_log_is_said_in_the_message(
    tmp_path: Path, home: Path, plan: RunPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("RUNNER_STORE", f"file://{blocked}/store")
    settings = load_settings()
    builds = Builds(RunRecords(settings.database), settings, FakeClock())
    with pytest.raises(BuildError):
        build(builds, plan, FakeBuilder(during_build=fail(BuildError("COPY failed"))))
    message = builds.records.get(plan.run_id).message
    assert message.startswith("its build failed: COPY failed (its build log could not be stored: ")
    assert message.endswith(
        "it ended: [1/2] base image / [2/2] copying the job's files / its build failed: COPY failed)"
    )


def test_a_run_whose_builder_died_has_failed(builds: Builds, plan: RunPlan) -> None:
    record = builds.begin(plan, "fake")
    assert builds.refresh(record).state is RunState.BUILDING  # its builder (this process) lives
    gone = builds.records.update(record.id, supervisor_pid=2**22 + 1, supervisor_start=1.0)
    failed = builds.refresh(gone)
    assert failed.state is RunState.FAILED
    assert failed.message == f"its build stopped: the process building it ({2**22 + 1}) is gone"


def test_the_logs_of_a_building_run_wait_for_its_launch_then_are_the_runs(
    builds: Builds, plan: RunPlan
) -> None:
    building_run = builds.begin(plan, "fake")
    reads = iter([building_run, FakeBuilder().launch(plan, builds.records, builds.settings)])
    clock = FakeClock()

    def launched(record: RunRecord) -> list[LogChunk]:
        return [LogChunk(1, f"{record.id} {record.state.value}\n".encode())]

    chunks = building.logs(
        building_run, follow=True, current=lambda: next(reads), clock=clock, launched=iter_of(launched)
    )
    assert [chunk.data for chunk in chunks] == [f"{plan.run_id} pending\n".encode()]
    assert clock.sleeps == [building.FOLLOW_POLL_SECONDS] * 2
    unfollowed = building.logs(
        building_run, follow=False, current=lambda: building_run, clock=clock, launched=iter_of(launched)
    )
    assert list(unfollowed) == []  # nothing to show yet, and no wait


def test_the_logs_of_a_run_that_ended_building_are_its_build_log(builds: Builds, plan: RunPlan) -> None:
    with pytest.raises(BuildError):
        build(builds, plan, FakeBuilder(during_build=fail(BuildError("COPY failed"))))
    ended = builds.records.get(plan.run_id)
    chunks = list(
        building.logs(
            ended, follow=True, current=lambda: ended, clock=FakeClock(), launched=iter_of(lambda record: [])
        )
    )
    assert [chunk.attempt for chunk in chunks] == [0]
    assert chunks[0].data.decode().endswith("its build failed: COPY failed\n")


def test_a_wait_for_the_launch_of_a_run_that_ended_building_fails_pointing_at_its_log(
    builds: Builds, plan: RunPlan
) -> None:
    with pytest.raises(BuildError):
        build(builds, plan, FakeBuilder(during_build=fail(BuildError("COPY failed"))))
    ended = builds.records.get(plan.run_id)
    with pytest.raises(
        RunnerError, match="was never launched: failed, its build failed: COPY failed"
    ) as said:
        waiting.wait_for(lambda: ended, waiting.Until.LAUNCHED, 60, FakeClock(), "1m")
    assert said.value.hint == f"runner logs {plan.run_id} prints its build log"
    assert waiting.wait_for(lambda: ended, waiting.Until.FINISHED, 60, FakeClock(), "1m") == ended


def test_a_wait_gives_up_after_its_timeout_saying_where_the_run_is(builds: Builds, plan: RunPlan) -> None:
    record = builds.begin(plan, "fake")
    clock = FakeClock()
    with pytest.raises(
        RunnerError, match=r"timed out after 2s waiting for run \S+ to be launched; it is building"
    ):
        waiting.wait_for(lambda: record, waiting.Until.LAUNCHED, 2, clock, "2s")
    assert sum(clock.sleeps) == pytest.approx(2.0)


def test_a_cluster_run_is_launched_once_its_objects_are_created(builds: Builds, plan: RunPlan) -> None:
    record = replace(builds.begin(plan, "fake"), state=RunState.PENDING, launch={"created": False})
    assert not waiting.reached(record, waiting.Until.LAUNCHED), "its Job is still being created"
    assert waiting.reached(replace(record, launch={"created": True}), waiting.Until.LAUNCHED)
    lost = replace(record, state=RunState.LOST)
    assert waiting.reached(lost, waiting.Until.LAUNCHED), "ended without them: no more to wait for"
    assert waiting.reached(replace(record, launch={}), waiting.Until.LAUNCHED), "a local run's launch"
