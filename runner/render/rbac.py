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

# What the runner does, verb by verb: submit (create ConfigMap + Job), watch status and pending reasons,
# stream and fetch logs, cancel (delete with foreground propagation), schedules
# (runner.backends.kubernetes.cronjobs):
# create or replace a CronJob, patch it to pause and resume, create a Job from it to trigger a run (as
# `kubectl create job --from=cronjob/NAME`: get cronjobs, create jobs), list its Jobs, delete it; and its
# ConfigMaps: create, get, patch, list and delete those no run needs.
#
# ConfigMaps are immutable (`immutable: true`), but only their data is: `patch` is what makes a
# schedule's ConfigMap owned by its CronJob (metadata.ownerReferences, so that deleting the schedule
# deletes it; runner.backends.kubernetes.cronjobs CronJobs._own). It cannot be created with its owner:
# the ConfigMap must exist before the CronJob (which may fire at once, and its pods mount it), and the
# owner reference needs the CronJob's uid, known only once the CronJob is created. A run's ConfigMap
# is never patched (created, read back after a conflict, deleted with its Job).
SUBMITTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch", "delete", "patch"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["cronjobs"],
        "verbs": ["create", "get", "list", "watch", "delete", "patch", "update"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
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
