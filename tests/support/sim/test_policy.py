"""Pure decisions of the simulator: tolerations, backoff, eviction delays."""

from __future__ import annotations

from tests.support.sim.lifecycle import eviction_delay
from tests.support.sim.placement import tolerates
from tests.support.sim.policy import backoff_seconds

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def test_tolerations_match_as_kubernetes_matches_them() -> None:
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, GPU_TAINT)
    assert tolerates({"key": "nvidia.com/gpu", "value": "present"}, GPU_TAINT)
    assert not tolerates({"key": "nvidia.com/gpu", "value": "absent"}, GPU_TAINT)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, GPU_TAINT)
    assert tolerates({"operator": "Exists"}, GPU_TAINT)
    assert not tolerates({"operator": "Equal"}, GPU_TAINT)


def test_backoff_doubles_from_ten_seconds_up_to_six_minutes() -> None:
    assert [backoff_seconds(n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 320]
    assert backoff_seconds(7) == backoff_seconds(30) == 360


def test_eviction_waits_for_the_shortest_matching_toleration() -> None:
    standard = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay({"spec": {}}, UNREACHABLE) == 0
    assert (
        eviction_delay({"spec": {"tolerations": [standard | {"tolerationSeconds": 300}]}}, UNREACHABLE) == 300
    )
    assert eviction_delay({"spec": {"tolerations": [standard]}}, UNREACHABLE) is None
    both = [standard | {"tolerationSeconds": 300}, {"operator": "Exists", "tolerationSeconds": 30}]
    assert eviction_delay({"spec": {"tolerations": both}}, UNREACHABLE) == 30
