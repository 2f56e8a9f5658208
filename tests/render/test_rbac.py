"""`runner rbac`: least privilege, no wildcards, and the verbs the runner really uses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from runner.render.rbac import JOBS, SUBMITTER, render_rbac
from tests.conftest import Result

Runner = Callable[..., Result]


def test_no_wildcards_and_exactly_the_needed_verbs() -> None:
    objects = render_rbac("ml")
    assert [o["kind"] for o in objects] == ["ServiceAccount", "ServiceAccount", "Role", "RoleBinding"]
    role = objects[2]
    text = yaml.safe_dump(role)
    assert "*" not in text
    verbs = {
        (rule["apiGroups"][0], resource): set(rule["verbs"])
        for rule in role["rules"]
        for resource in rule["resources"]
    }
    # Jobs are never patched or watched: status is read when asked for (tests/realcluster/test_rbac.py
    # records every request of every command against a real API server and checks each grant is used)
    assert verbs[("batch", "jobs")] == {"create", "get", "list", "delete"}
    assert verbs[("", "pods")] == {"get", "list", "watch"}  # watch: the log follower between attempts
    assert verbs[("", "pods/log")] == {"get"}
    # schedules: replace and patch (pause) CronJobs; own, list and prune their ConfigMaps
    assert verbs[("batch", "cronjobs")] == {"create", "get", "list", "delete", "patch", "update"}
    assert verbs[("", "configmaps")] == {"create", "get", "list", "patch", "delete"}
    # a multi-worker run's headless Service: created owned by its Job, which takes it along when deleted
    assert verbs[("", "services")] == {"create"}
    assert ("", "secrets") not in verbs, "the runner never reads secrets; pods reference them"
    # pending reasons come from the pods' PodScheduled condition, not from Events
    assert ("", "events") not in verbs
    assert set(verbs) == {
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("", "configmaps"),
        ("", "services"),
        ("", "pods"),
        ("", "pods/log"),
    }
    assert all(o["metadata"]["namespace"] == "ml" for o in objects)


def test_job_pods_get_no_api_token() -> None:
    jobs_account = render_rbac("ml")[1]
    assert jobs_account["metadata"]["name"] == JOBS
    assert jobs_account["automountServiceAccountToken"] is False


def test_the_binding_names_the_role_and_account() -> None:
    binding = render_rbac("team-a")[3]
    assert binding["roleRef"]["name"] == SUBMITTER
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SUBMITTER, "namespace": "team-a"}]


def test_runner_rbac_prints_yaml_for_kubectl_apply() -> None:
    from click.testing import CliRunner

    from runner.cli.main import cli

    result = CliRunner().invoke(cli, ["rbac", "-n", "ml"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert documents == render_rbac("ml")


@pytest.mark.parametrize("namespace", ["", "ml\nkind: ClusterRole", "ML", "-ml", "a" * 64, "ml "])
def test_a_namespace_that_is_no_dns_label_is_refused(runner: Runner, namespace: str) -> None:
    result = runner("rbac", "-n", namespace)
    assert result.code == 2, result.output
    assert result.stdout == ""  # nothing for kubectl apply to take
    assert "Invalid value for '-n' / '--namespace': namespace" in result.stderr
    assert "DNS-1123 label" in result.stderr or "at most 63" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="namespace"):
        render_rbac(namespace)


def test_configmap_patch_is_granted_because_runs_and_schedules_set_their_owner() -> None:
    """ConfigMaps are immutable, their metadata is not: a submit creates the run's ConfigMap before its
    Job, and `runner schedule apply` a schedule's before its CronJob (whose pods mount it); each then
    patches the Job or CronJob in as its owner (the owner reference needs the owner's uid), so garbage
    collection removes the ConfigMap with it. tests/realcluster/test_rbac.py replays every command against
    a real API server with only this Role; this keeps the reason next to the grant."""
    import inspect

    from runner.backends.kubernetes.backend import KubernetesBackend
    from runner.backends.kubernetes.cronjobs import CronJobs

    assert "patch_namespaced_config_map" in inspect.getsource(CronJobs._own)
    assert "patch_namespaced_config_map" in inspect.getsource(KubernetesBackend._own)
    configmaps = [rule for rule in render_rbac("ml")[2]["rules"] if rule["resources"] == ["configmaps"]]
    assert configmaps == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["create", "get", "list", "patch", "delete"],
        }
    ]
