"""A PodRuntime that runs nothing: each container "runs" for a simulated duration on the simulator clock.

For scale runs (thousands of Jobs on a hundred nodes) and for controller tests that care about status,
not about what a container does. What a pod does can be set per pod with annotations on its template,
or for all pods with callables:

    sim.runner.dev/duration       seconds the container runs (default: `duration(pod)`, 60)
    sim.runner.dev/exit-code      its exit code (default: `exit_code(pod)`, 0)
    sim.runner.dev/oom-killed     "true": it is killed for memory (exit 137, reason OOMKilled)
    sim.runner.dev/start-failure  a kubelet waiting reason (ErrImagePull, CreateContainerConfigError):
                                  the container never starts

Each container logs a line when it starts and one when it ends. A killed container exits 143 (SIGTERM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.sim.clock import Clock, Timer
from tests.support.sim.runtime import PodSink

Obj = dict[str, Any]

DURATION = "sim.runner.dev/duration"
EXIT_CODE = "sim.runner.dev/exit-code"
OOM_KILLED = "sim.runner.dev/oom-killed"
START_FAILURE = "sim.runner.dev/start-failure"

START_MESSAGES = {
    "ErrImagePull": 'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found',
    "CreateContainerConfigError": 'secret "{image}" not found',
}


@dataclass
class _Container:
    sink: PodSink
    timer: Timer | None


class ScaleRuntime:
    def __init__(
        self,
        clock: Clock,
        *,
        duration: Callable[[Obj], float] = lambda pod: 60.0,
        exit_code: Callable[[Obj], int] = lambda pod: 0,
    ) -> None:
        self.clock = clock
        self.duration = duration
        self.exit_code = exit_code
        self.containers: dict[str, _Container] = {}
        self.started = 0

    def start(self, pod: Obj, node: str, sink: PodSink) -> None:
        meta = pod["metadata"]
        uid, annotations = meta["uid"], meta.get("annotations") or {}
        self.started += 1
        failure = annotations.get(START_FAILURE)
        if failure:
            image = pod["spec"]["containers"][0].get("image", "")
            sink.failed_to_start(failure, START_MESSAGES.get(failure, failure).format(image=image))
            return
        seconds = float(annotations.get(DURATION, self.duration(pod)))
        oom = annotations.get(OOM_KILLED) == "true"
        code = 137 if oom else int(annotations.get(EXIT_CODE, self.exit_code(pod)))
        sink.started()
        sink.log(f"[sim] {meta['name']} running on {node} for {seconds:g}s\n")

        def finish() -> None:
            if self.containers.pop(uid, None) is None:
                return
            sink.log(f"[sim] {meta['name']} exiting with code {code}\n")
            sink.exited(code, oom_killed=oom)

        self.containers[uid] = _Container(sink, self.clock.call_later(seconds, finish))

    def kill(self, pod_uid: str, grace_seconds: float) -> None:
        container = self.containers.pop(pod_uid, None)
        if container is None:
            return
        if container.timer is not None:
            container.timer.cancel()
        container.sink.log("[sim] received SIGTERM\n")
        container.sink.exited(143)

    def close(self) -> None:
        for uid in list(self.containers):
            self.kill(uid, 0)
