"""The least privilege the runner needs in a namespace: `runner rbac` prints it for a cluster admin to apply.

Two ServiceAccounts: `runner` for people and CI that submit (the CLI's identity), and `runner-jobs` for the
job pods, which need no API access at all (artifacts go to the store, not the API). No wildcards anywhere.
"""

from __future__ import annotations

from typing import Any

from runner.spec.labels import MANAGED_BY, MANAGER
from runner.spec.names import check_dns_label

SUBMITTER = "runner"
JOBS = "runner-jobs"
LABELS = {MANAGED_BY: MANAGER, "app.kubernetes.io/name": "runner"}

# What the runner does, verb by verb (runner.backends.kubernetes: backend.py, podlogs.py, cronjobs.py),
# and nothing more: `tests/realcluster/test_rbac.py` runs every command against a real API server with
# only this Role, and records the requests made: a verb missing here fails it, and so does one granted
# here that no command uses.
#   jobs        create (submit; trigger, as `kubectl create job --from=cronjob/NAME`), get (status, and
#               the read back after a conflict), list (list --cluster, bulk refresh, adoption, the
#               prerequisite check, a schedule's runs), delete (cancel, with foreground propagation).
#               Never patched or watched: status is read on demand, not followed.
#   cronjobs    create, get, list, delete; update (a re-apply replaces the CronJob at the version read);
#               patch (pause and resume set spec.suspend). Never watched.
#   configmaps  create, get (after a conflict: a schedule's is named by its manifest's digest), list
#               (a schedule's, to prune those no run needs), delete (with a run, or pruned), patch: only
#               metadata.ownerReferences (the data is immutable), so that a run's ConfigMap goes with its
#               Job (TTL, kubectl delete) and a schedule's with its CronJob. It cannot be created owned:
#               the owner's uid exists only once the owner is created, after the ConfigMap its pods mount.
#   services    create only: a multi-worker run's headless Service (its pods' DNS names), created owned by
#               its Job, so the garbage collector deletes it with the Job (cancel, TTL); never read: a
#               409 is this run's own only when its Job already was (a repeated submit).
#   pods        get, list, and watch (the log follower waits on a watch between attempts); pods/log get.
#   events      nothing: pending reasons come from the pods' PodScheduled condition, which holds
#               kube-scheduler's message, not from Events.
#
SUBMITTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "delete"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["cronjobs"],
        "verbs": ["create", "get", "list", "delete", "patch", "update"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(LABELS)}


def render_rbac(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccounts, the submitter's Role and its RoleBinding for one namespace.

    Raises ValueError for a namespace that is not a DNS-1123 label (empty, upper-case, a newline...).
    """
    check_dns_label(namespace, "namespace")
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(SUBMITTER, namespace)},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(JOBS, namespace),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(SUBMITTER, namespace),
            "rules": SUBMITTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(SUBMITTER, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SUBMITTER},
            "subjects": [{"kind": "ServiceAccount", "name": SUBMITTER, "namespace": namespace}],
        },
    ]
