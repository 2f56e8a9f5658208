"""A run's pod logs through the API server: every pod (one per attempt of a worker) oldest first, followed
live. A multi-worker run's pods are told apart by their completion index (the worker), and each worker's
attempts are counted on their own. Pods are read one after another: while worker 0's log is followed, the
others' wait, and are read whole (nothing lost) once it ends.

A followed stream can drop (an API server restart, a proxy timeout); once it ends, the whole log is
fetched again and only what was not yet seen is passed on, so no line is lost or doubled. Between
attempts the follower waits on a watch of the run's pods, not a polling loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from runner.backends.kubernetes.client import REQUEST_TIMEOUT, api_error
from runner.backends.kubernetes.pure.reading import pod_selector, worker_index
from runner.clock import Clock
from runner.records import RunRecord

RESUME_PAUSE = 1.0  # seconds between resumed log follows that brought nothing new
# a follow waits at most this long for the next bytes: a quiet job's follow is then resumed (nothing is
# lost or doubled), and a connection that died silently does not hang `runner logs -f`
FOLLOW_TIMEOUT = (REQUEST_TIMEOUT[0], 120)


class PodLogs:
    """The logs of pods read through core/v1, waiting on clock between resumed follows."""

    def __init__(self, core: Any, clock: Clock) -> None:
        self.core = core
        self.clock = clock

    def of_run(
        self, record: RunRecord, *, follow: bool, current: Callable[[], RunRecord], poll: float
    ) -> Iterator[tuple[int, int, bytes]]:
        """(attempt, worker, bytes) of every pod of the run, oldest first; each worker's attempts numbered
        by their order."""
        namespace = record.launch["namespace"]
        core = self.core
        done: list[str] = []
        attempts: dict[int, int] = {}
        while True:
            listing = core.list_namespaced_pod(
                namespace, label_selector=pod_selector(record.id), _request_timeout=REQUEST_TIMEOUT
            )
            pods = listing.items
            pods.sort(key=lambda pod: (pod.metadata.creation_timestamp, pod.metadata.name))
            for pod in pods:
                name = pod.metadata.name
                if name in done or (pod.status.phase or "Pending") == "Pending":
                    continue
                ended = pod.status.phase in ("Succeeded", "Failed")
                done.append(name)
                worker = worker_index({"metadata": {"annotations": pod.metadata.annotations}})
                attempts[worker] = number = attempts.get(worker, 0) + 1
                yield from (
                    (number, worker, chunk) for chunk in self._pod_log(namespace, name, follow and not ended)
                )
            if not follow:
                return
            if current().state.terminal and len(done) >= len(pods):
                return
            self._await_change(namespace, record.id, listing.metadata.resource_version, poll)

    def _await_change(self, namespace: str, run_id: str, version: str | None, timeout: float) -> None:
        """Block on a watch of the run's pods until something changes or timeout passes: no polling loop.

        A 410 Gone (the version fell out of the server's history) just returns: the caller lists again.
        """
        import urllib3
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        watcher = watch.Watch()
        try:
            for _event in watcher.stream(
                self.core.list_namespaced_pod,
                namespace,
                label_selector=pod_selector(run_id),
                resource_version=version,
                timeout_seconds=max(int(timeout), 1),
                _request_timeout=(REQUEST_TIMEOUT[0], timeout + REQUEST_TIMEOUT[0]),
            ):
                return
        except ApiException as error:
            if error.status != 410:
                raise api_error(error, f"watching the pods of run {run_id}") from None
        except urllib3.exceptions.HTTPError:
            return  # the watch timed out on our side or was dropped: the caller lists again
        finally:
            watcher.stop()

    def _pod_log(self, namespace: str, name: str, follow: bool) -> Iterator[bytes]:
        """A pod's log: followed while its container runs, then fetched whole to pass on what the follow
        missed. A follow that is cut (an API server restart, a proxy timeout) or ends while the pod still
        runs is resumed; as the log API cannot start at an offset, a resumed follow skips what was seen."""
        from kubernetes.client.exceptions import ApiException

        seen = 0
        try:
            while follow:
                before = seen
                for chunk in self._follow_once(namespace, name, skip=seen):
                    seen += len(chunk)
                    yield chunk
                follow = self._pod_running(namespace, name)
                if follow and seen == before:
                    self.clock.sleep(RESUME_PAUSE)  # ended without news while the pod runs: do not spin
            full = self.core.read_namespaced_pod_log(
                name, namespace, container="job", _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ).data
        except ApiException as error:
            if error.status in (400, 404):  # not started yet, or gone with its Job
                return
            raise api_error(error, f"reading the log of pod {name}") from None
        if len(full) > seen:
            yield full[seen:]

    def _follow_once(self, namespace: str, name: str, *, skip: int) -> Iterator[bytes]:
        """One follow of the pod's log from its start, without its first `skip` bytes; ends quietly when
        the stream ends or is cut."""
        import urllib3

        response = self.core.read_namespaced_pod_log(
            name,
            namespace,
            container="job",
            follow=True,
            _preload_content=False,
            _request_timeout=FOLLOW_TIMEOUT,
        )
        try:
            for chunk in response.stream(64 * 1024):
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                yield chunk[skip:]
                skip = 0
        except urllib3.exceptions.HTTPError:
            return  # cut mid-stream: the caller resumes or reconciles
        finally:
            response.release_conn()

    def _pod_running(self, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return False
            raise api_error(error, f"reading pod {name}") from None
        return (pod.status.phase or "Pending") not in ("Succeeded", "Failed")
