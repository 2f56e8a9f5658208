"""A process that submits many cluster runs probes their prerequisites once a minute, not once a run: the
probes (a LIST, an S3 client made and asked, a registry GET) cost half a second a submission. A failed
check is never remembered, and another target is probed on its own."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from runner.backends.base import RunPlan
from runner.backends.kubernetes import prerequisites
from runner.config import load_settings
from tests.support.fakes import FakeClock


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """What each probe finds, in order (missing items; [] when all passed); consumed as probes happen."""
    answers: list[list[str]] = []
    monkeypatch.setattr(prerequisites, "_PASSED", {})
    monkeypatch.setattr(prerequisites, "cluster_namespace", lambda manifest, namespace, context: "ml")

    def probe(plan: RunPlan, settings: Any, context: str | None, namespace: str) -> list[str]:
        return answers.pop(0)

    monkeypatch.setattr(prerequisites, "probe", probe)
    return answers


PLAN = cast(RunPlan, SimpleNamespace(manifest=SimpleNamespace(name="train")))


def test_a_target_that_passed_is_not_probed_again_for_a_minute(probes: list[list[str]]) -> None:
    clock = FakeClock()
    settings = load_settings({"RUNNER_STORE": "s3://bucket/runs", "RUNNER_REGISTRY": "127.0.0.1:5000"})
    probes += [[], []]
    assert prerequisites.missing_prerequisites(PLAN, settings, None, clock) == []
    clock.sleep(59)
    assert prerequisites.missing_prerequisites(PLAN, settings, None, clock) == []
    assert len(probes) == 1  # not probed: passed 59 s ago
    clock.sleep(1)
    assert prerequisites.missing_prerequisites(PLAN, settings, None, clock) == []
    assert probes == []


def test_a_failure_is_never_remembered_and_other_targets_are_probed(probes: list[list[str]]) -> None:
    clock = FakeClock()
    settings = load_settings({"RUNNER_STORE": "s3://bucket/runs", "RUNNER_REGISTRY": "127.0.0.1:5000"})
    other = load_settings({"RUNNER_STORE": "s3://other/runs", "RUNNER_REGISTRY": "127.0.0.1:5000"})
    probes += [[], ["a registry that answers"], ["a registry that answers"], []]
    assert prerequisites.missing_prerequisites(PLAN, settings, None, clock) == []
    assert prerequisites.missing_prerequisites(PLAN, other, None, clock) == ["a registry that answers"]
    assert prerequisites.missing_prerequisites(PLAN, other, None, clock) == ["a registry that answers"]
    assert prerequisites.missing_prerequisites(PLAN, other, None, clock) == []  # probed each time
    assert probes == []
    assert prerequisites.missing_prerequisites(PLAN, settings, None, clock) == []  # still within its minute
