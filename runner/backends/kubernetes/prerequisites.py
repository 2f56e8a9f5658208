"""What a cluster run needs before anything is built: a cluster that answers, an s3:// store that answers,
a registry that answers. Each probe is quick (PROBE_TIMEOUT) and says what is missing in the user's terms.

A process that submits many runs (a script on RunService, a schedule's catch-up) probes once: a target
whose every probe passed is not probed again for PASSED_FOR seconds. A failure is never remembered."""

from __future__ import annotations

import os
import threading

from runner.backends.base import RunPlan
from runner.backends.kubernetes.client import CONFIG_HINT, api_error, apis, read_json
from runner.backends.kubernetes.target import cluster_namespace
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import RunnerError
from runner.spec.labels import MANAGED_BY, MANAGER

PROBE_TIMEOUT = (3, 5)  # seconds to connect, to read: a prerequisite check answers quickly
PASSED_FOR = 60.0  # seconds a target whose probes all passed is taken as still passing, in this process

_PASSED: dict[
    tuple[str | None, str | None, str, str, str], float
] = {}  # target -> when its probes last all passed
_PASSED_LOCK = threading.Lock()


def cluster_problem(namespace: str, context: str | None) -> str | None:
    """Why the cluster of context cannot be asked about the namespace's runner Jobs (no kubeconfig,
    refused, an error answer, a Role that does not allow it), or None. One LIST of at most one Job: a
    request the runner's own Role allows (runner rbac)."""
    try:
        batch, _ = apis(context)
        read_json(batch.list_namespaced_job, namespace, label_selector=f"{MANAGED_BY}={MANAGER}", limit=1)
    except RunnerError as error:
        return f"a Kubernetes cluster: {error.message}; {CONFIG_HINT}"
    except Exception as error:
        if getattr(error, "status", None):
            return f"a Kubernetes cluster that answers: {api_error(error, f'listing Jobs in {namespace}')}"
        reason = str(getattr(error, "reason", None) or error)
        reason = reason.rpartition("Failed to establish a new connection: ")[2].rstrip("')\"")
        return f"a Kubernetes cluster that answers: {reason}"
    return None


def store_problem(url: str, job: str) -> str | None:
    """Why the s3:// store at url cannot be reached from here (and so likely not by the pods), or None."""
    from runner.store import open_store

    try:
        open_store(url).exists(f"{job}/latest")
    except RunnerError as error:
        return f"an artifact store that answers: {url}: {error.message}"
    except Exception as error:
        return f"an artifact store that answers: {url}: {type(error).__name__}: {error}"
    return None


def registry_problem(registry: str) -> str | None:
    """Why the registry does not answer its /v2/ endpoint (over https, else http), or None. Any HTTP
    answer counts (401 too: the engine logs in); only no answer at all is a problem."""
    import urllib.error
    import urllib.request

    reasons = []
    for scheme in ("https", "http"):
        try:
            with urllib.request.urlopen(f"{scheme}://{registry}/v2/", timeout=PROBE_TIMEOUT[1]):
                return None
        except urllib.error.HTTPError:
            return None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reasons.append(str(getattr(error, "reason", error)))
    return f"a registry that answers: RUNNER_REGISTRY={registry} does not ({reasons[-1]})"


def missing_prerequisites(
    plan: RunPlan, settings: Settings, context: str | None, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """What a cluster run of plan lacks, every item at once: a reachable cluster, an s3:// store that
    answers, a registry that answers. (A missing store Secret is warned about: pods may have an
    identity that gives them the store's credentials.) Not probed again within PASSED_FOR seconds of a
    check of the same target that found nothing missing."""
    namespace = cluster_namespace(plan.manifest, None, context)
    target = (os.environ.get("KUBECONFIG"), context, namespace, settings.store_url, settings.registry or "")
    with _PASSED_LOCK:
        passed = _PASSED.get(target)
    if passed is not None and clock.monotonic() - passed < PASSED_FOR:
        return []
    missing = probe(plan, settings, context, namespace)
    with _PASSED_LOCK:
        if missing:
            _PASSED.pop(target, None)
        else:
            _PASSED[target] = clock.monotonic()
    return missing


def probe(plan: RunPlan, settings: Settings, context: str | None, namespace: str) -> list[str]:
    """Every prerequisite probed now."""
    missing = []
    cluster = cluster_problem(namespace, context)
    if cluster:
        missing.append(cluster)
    if not settings.store_url.startswith("s3://"):
        missing.append(
            f"an artifact store its pods can reach: {settings.store_url} is local to this machine; "
            "set RUNNER_STORE=s3://bucket/prefix (and AWS_ENDPOINT_URL for MinIO and the like)"
        )
    else:
        store = store_problem(settings.store_url, plan.manifest.name)
        if store:
            missing.append(store)
    if not settings.registry:
        missing.append("a registry its nodes pull job images from: set RUNNER_REGISTRY=host:port")
    else:
        registry = registry_problem(settings.registry)
        if registry:
            missing.append(registry)
    return missing
