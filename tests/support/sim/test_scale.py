"""Scale mode: many Jobs on many GPU nodes, everything on the fake clock. No timing assertions: this
checks that the event-driven controllers get every Job through, and that nothing is missed although
the API server's watch history is far shorter than the run."""

from __future__ import annotations

from collections import Counter

from tests.support.sim.builders import gpu_job
from tests.support.sim.fixtures import Cluster


def test_a_thousand_jobs_complete_on_ten_nodes(cluster: Cluster) -> None:
    cluster.sim.add_nodes(10, gpus=8)
    for index in range(1000):
        gpus = 1 + index % 4
        cluster.server.create(
            gpu_job(
                f"job-{index:04d}", gpus=gpus, seconds=60 + index % 7 * 30, exit_code=int(index % 50 == 0)
            )
        )

    cluster.sim.run_until(lambda: cluster.sim.clock.next_due() is None, within=7 * 86400)

    outcomes = Counter(
        next(c["type"] for c in j["status"]["conditions"] if c["type"] in ("Complete", "Failed"))
        for j in cluster.server.list_objects("jobs")
    )
    assert outcomes == {"Complete": 980, "Failed": 20}
    assert cluster.server.store.compacted_rv > 0  # the watch history rolled over many times meanwhile
    assert all(state.used["nvidia.com/gpu"] == 0 for state in cluster.sim.scheduler.nodes.values())
    assert cluster.sim.scheduler.queues == {}
