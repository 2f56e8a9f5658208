"""RBAC on a real API server (--authorization-mode=Node,RBAC): runner acting with only what `runner rbac`
grants, as its ServiceAccount through a token (a TokenRequest) in a kubeconfig of its own, performs every
command it offers: submit, status, logs -f, cancel, list --cluster, artifacts, and schedule apply, list,
pause, resume, trigger and delete. Every request it makes is recorded: a verb missing from the Role fails
a command, and a verb the Role grants that no command used fails the test (remove it from
runner/render/rbac.py). It is refused what it does not need: Secrets, other namespaces. A user with a
client certificate signed by the cluster's CA, bound to the same Role, is allowed exactly the same."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from runner.render.rbac import JOBS, SUBMITTER
from tests.conftest import submit_launched
from tests.realcluster.helpers import (
    ON_GPU_NODES,
    Grant,
    Job,
    Runner,
    condition,
    granted,
    identity_kubeconfig,
    job_finished,
    recorded_runner,
    recorded_runner_process,
    small_job,
    used_grants,
)
from tests.realcluster.test_workers import two_workers
from tests.support.apiserver.fixtures import kubectl_binary
from tests.support.realcluster import ControlPlane, RealKube, wait_until

pytestmark = ON_GPU_NODES
OURS = {"", "batch"}  # the API groups of the Role's rules (the rest is what every user may ask of itself)


def apply_rbac(runner: Runner, kube: RealKube) -> dict[str, Any]:
    """`runner rbac -n NS | kubectl apply -f -` as the admin; the Role as the API server stored it."""
    rendered = runner("rbac", "-n", kube.namespace)
    assert rendered.code == 0, rendered.output
    applied = kube.kubectl("apply", "-f", "-", input=rendered.stdout)
    assert applied.returncode == 0, applied.stderr
    role = kube.kubectl("get", "role", SUBMITTER, "-o", "json")
    assert role.returncode == 0, role.stderr
    found: dict[str, Any] = json.loads(role.stdout)
    return found


def service_account_kubeconfig(kube: RealKube, path: Path) -> Path:
    """A kubeconfig holding only a token of the runner's ServiceAccount (TokenRequest, as the admin)."""
    token = kube.kubectl("create", "token", SUBMITTER, "--duration", "1h")
    assert token.returncode == 0, token.stderr
    return identity_kubeconfig(kube.plane, path, kube.namespace, token=token.stdout.strip())


def kubectl_as(config: Path, kube: RealKube, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl with that kubeconfig, and nothing else, as its identity."""
    return subprocess.run(
        [str(kubectl_binary()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**kube.env, "KUBECONFIG": str(config)},
        check=False,
    )


def api_port(plane: ControlPlane) -> int:
    port = urlsplit(plane.url).port
    assert port is not None, plane.url
    return port


def test_runner_does_everything_it_offers_with_only_its_role_and_uses_every_grant(
    runner: Runner,
    job: Job,
    python_base_image: str,
    real_kube: RealKube,
    tmp_path: Path,
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = apply_rbac(runner, real_kube)
    config = service_account_kubeconfig(real_kube, tmp_path / "runner.kubeconfig")
    whoami = kubectl_as(config, real_kube, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{real_kube.namespace}:{SUBMITTER}"
    assert "system:masters" not in user.get("groups", [])
    monkeypatch.setenv("KUBECONFIG", str(config))  # from here on, runner is the ServiceAccount
    log = tmp_path / "api.log"
    act = partial(recorded_runner, log, api_port(real_kube.plane))

    # submit, logs -f (of a pod still running when it starts: followed live, then read whole), status,
    # artifacts, list --cluster
    path = small_job(
        job, python_base_image, "walk", 'echo one; sleep 8; echo two > "$RUNNER_OUTPUTS/two.txt"; echo done'
    )
    submitted = submit_launched("--backend", "kubernetes", str(path), run=act)
    assert submitted.code == 0, submitted.output[-3000:]
    run = submitted.stdout.strip()
    followed = act("logs", "-f", run, timeout=300)
    assert followed.code == 0, followed.output
    assert "one" in followed.stdout and "done" in followed.stdout, followed.output

    def status(run_id: str) -> dict[str, Any]:
        shown = act("status", run_id, "-o", "json")
        assert shown.code == 0, shown.output
        found: dict[str, Any] = json.loads(shown.stdout)
        return found

    wait_until(lambda: status(run)["state"] == "succeeded", 120, f"run {run} to succeed", pause=1)
    artifacts = act("artifacts", run)
    assert artifacts.code == 0, artifacts.output
    assert "two.txt" in artifacts.stdout, artifacts.stdout
    listed = act("list", "--cluster")
    assert listed.code == 0, listed.output
    assert run in listed.stdout

    # two workers: the run's headless Service is created owned by its Job (services: create, nothing more)
    pair = two_workers(job, python_base_image, "pair")
    submitted = submit_launched("--backend", "kubernetes", str(pair), run=act)
    assert submitted.code == 0, submitted.output[-3000:]
    paired = submitted.stdout.strip()
    wait_until(lambda: status(paired)["state"] == "succeeded", 180, f"run {paired} to succeed", pause=1)

    # a run that waits (no node has 16 GPUs): logs -f waits on a watch of its pods until it is cancelled
    waiting = small_job(
        job, python_base_image, "waits", "echo never", resources={"gpu": 16, "gpuType": "H100"}
    )
    submitted = submit_launched("--backend", "kubernetes", str(waiting), run=act)
    assert submitted.code == 0, submitted.output[-3000:]
    pending = submitted.stdout.strip()
    follower = recorded_runner_process(log, api_port(real_kube.plane), "logs", "-f", pending)
    try:
        wait_until(
            lambda: ("", "pods", "watch") in used_grants(log)[0], 90, "the follower's watch", pause=0.5
        )
        cancelled = act("cancel", pending, timeout=300)
        assert cancelled.code == 0, cancelled.output
        follower.wait(timeout=90)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert status(pending)["state"] == "cancelled"
    assert real_kube.job(pending) is None

    # schedules: apply (create), apply again (the same manifest: its ConfigMap is found, the CronJob
    # replaced), apply a changed one (a new ConfigMap, the old one pruned), list, pause, resume, trigger,
    # and the triggered run read (adopted by list --cluster), then delete
    nightly = small_job(
        job, python_base_image, "nightly", "echo scheduled $RUNNER_RUN_ID", schedule={"cron": "0 2 * * *"}
    )
    for _ in range(2):
        applied = act("schedule", "apply", str(nightly), "--backend", "kubernetes", timeout=600)
        assert applied.code == 0, applied.output[-3000:]
    manifest = yaml.safe_load(nightly.read_text())
    manifest["spec"]["command"] = ["sh", "-c", "echo scheduled run $RUNNER_RUN_ID"]
    nightly.write_text(yaml.safe_dump(manifest, sort_keys=False))
    applied = act("schedule", "apply", str(nightly), "--backend", "kubernetes", timeout=600)
    assert applied.code == 0, applied.output[-3000:]
    maps = real_kube.kubectl("get", "configmaps", "-l", "runner.dev/schedule=nightly", "-o", "name")
    assert len(maps.stdout.split()) == 1, maps.stdout  # the first manifest's ConfigMap was pruned

    schedules = act("schedule", "list", "--cluster")
    assert schedules.code == 0 and "nightly" in schedules.stdout, schedules.output
    for verb, suspended in (("pause", True), ("resume", False)):
        done = act("schedule", verb, "nightly", "--cluster")
        assert done.code == 0, done.output
        cronjob = real_kube.get(real_kube.batch.read_namespaced_cron_job, "nightly", real_kube.namespace)
        assert cronjob is not None and cronjob["spec"]["suspend"] is suspended
    triggered = act("schedule", "trigger", "nightly", "--cluster")
    assert triggered.code == 0, triggered.output
    fired = triggered.stdout.strip().split()[-1]
    assert condition(job_finished(real_kube, fired), "Complete")
    adopted = act("list", "--cluster")
    assert adopted.code == 0 and fired in adopted.stdout, adopted.output
    wait_until(lambda: status(fired)["state"] == "succeeded", 120, f"run {fired} to succeed", pause=1)
    logs = act("logs", fired)
    assert logs.code == 0 and f"scheduled run {fired}" in logs.stdout, logs.output
    deleted = act("schedule", "delete", "nightly", "--cluster")
    assert deleted.code == 0, deleted.output
    assert real_kube.get(real_kube.batch.read_namespaced_cron_job, "nightly", real_kube.namespace) is None

    # every request was one the Role allows, and every grant of the Role was used
    used, other = used_grants(log)
    assert other == [], f"requests outside the namespace's resources: {other}"
    grants = granted(role["rules"])
    assert used <= grants, f"used but not granted (the commands above would have failed): {used - grants}"
    assert grants - used == set(), (
        f"granted by `runner rbac` but used by no command: {sorted(grants - used)}; "
        "remove them from runner/render/rbac.py"
    )


def test_runner_is_refused_what_it_does_not_need(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube, tmp_path: Path
) -> None:
    apply_rbac(runner, real_kube)
    namespace = real_kube.namespace
    account = f"system:serviceaccount:{namespace}:{SUBMITTER}"

    # asked of the authorizer, as the admin impersonating the account
    for verb, resource, where in (
        ("get", "secrets", namespace),
        ("list", "secrets", namespace),
        ("create", "pods", namespace),  # Jobs make the pods, not the runner
        ("create", "pods/exec", namespace),
        ("create", "roles.rbac.authorization.k8s.io", namespace),
        ("list", "jobs.batch", "default"),
        ("create", "jobs.batch", "kube-system"),
        ("list", "nodes", ""),
    ):
        scope = ["-n", where] if where else []
        answer = real_kube.kubectl("auth", "can-i", verb, resource, "--as", account, *scope)
        assert answer.stdout.strip() == "no", (verb, resource, where, answer.stdout, answer.stderr)
    # the job pods' account may do nothing at all
    answer = real_kube.kubectl(
        "auth", "can-i", "get", "configmaps", "--as", f"system:serviceaccount:{namespace}:{JOBS}"
    )
    assert answer.stdout.strip() == "no", answer.stdout

    # and by the API server itself, to the account's own token
    config = service_account_kubeconfig(real_kube, tmp_path / "runner.kubeconfig")
    secret = kubectl_as(config, real_kube, "get", "secret", "runner-store")
    assert secret.returncode != 0
    assert 'cannot get resource "secrets"' in secret.stderr, secret.stderr
    env = {"KUBECONFIG": str(config)}
    # `runner list --cluster` shows this machine's runs with a warning when the cluster refuses (it
    # degrades, as for a cluster that does not answer); `runner schedule list` fails, with the hint
    listed = runner("list", "--cluster", "-n", "default", env=env)
    assert "listing the runner's Jobs in default: forbidden" in listed.stderr, listed.output
    refused = runner("schedule", "list", "--cluster", "-n", "default", env=env)
    assert refused.code == 1, refused.output
    assert "listing the schedules in default: forbidden" in refused.stderr, refused.stderr
    assert "runner rbac -n NAMESPACE" in refused.stderr, refused.stderr  # the hint to the fix
    for result in (listed, refused):
        assert "Traceback" not in result.stderr
    # a manifest naming another namespace is refused before anything is built or created there
    elsewhere = small_job(
        job, python_base_image, "elsewhere", "echo never", kubernetes={"namespace": "default"}
    )
    refused = runner("submit", "--backend", "kubernetes", str(elsewhere), env=env, timeout=300)
    assert refused.code != 0, refused.output
    assert "forbidden" in refused.stderr, refused.stderr
    assert (
        real_kube.kubectl(
            "get", "jobs", "-n", "default", "-l", "runner.dev/job=elsewhere", "-o", "name"
        ).stdout
        == ""
    )


def rules_of(plane: ControlPlane, config: Path, namespace: str) -> set[Grant]:
    """What the identity of config may do in namespace on the Role's groups (a SelfSubjectRulesReview)."""
    from kubernetes import client

    api = plane.api_client(config)
    body: Any = {"spec": {"namespace": namespace}}  # a dict: the client sends it as it is
    try:
        review: Any = client.AuthorizationV1Api(api).create_self_subject_rules_review(
            body, _preload_content=False
        )
    finally:
        api.close()  # type: ignore[no-untyped-call]
    rules = [
        rule
        for rule in json.loads(review.data)["status"]["resourceRules"]
        if set(rule.get("apiGroups") or []) <= OURS
    ]
    return granted(rules)


def test_a_user_with_a_client_certificate_bound_to_the_role_may_do_the_same(
    runner: Runner, real_kube: RealKube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    role = apply_rbac(runner, real_kube)
    namespace = real_kube.namespace
    user = f"runner-user-{namespace}"
    bound = real_kube.kubectl(
        "create", "rolebinding", f"{SUBMITTER}-user", f"--role={SUBMITTER}", f"--user={user}"
    )
    assert bound.returncode == 0, bound.stderr

    # a key and a client certificate for that user (no group), signed by the cluster's CA
    key, csr, crt, ext = (tmp_path / f"user.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    for command in (
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
        ["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={user}", "-out", str(csr)],
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(control_plane.pki / "ca.crt"),
            "-CAkey",
            str(control_plane.pki / "ca.key"),
            "-CAcreateserial",
            "-CAserial",
            str(tmp_path / "ca.srl"),
            "-days",
            "1",
            "-sha256",
            "-extfile",
            str(ext),
            "-out",
            str(crt),
        ],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    config = identity_kubeconfig(
        control_plane, tmp_path / "user.kubeconfig", namespace, certificate=(crt, key)
    )
    whoami = kubectl_as(config, real_kube, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == user

    account = service_account_kubeconfig(real_kube, tmp_path / "runner.kubeconfig")
    assert rules_of(control_plane, config, namespace) == granted(role["rules"])
    assert rules_of(control_plane, account, namespace) == granted(role["rules"])
    env = {"KUBECONFIG": str(config)}
    for allowed_command in (("list", "--cluster"), ("schedule", "list", "--cluster")):
        allowed = runner(*allowed_command, env=env)
        assert allowed.code == 0, allowed.output
    assert "forbidden" in kubectl_as(config, real_kube, "get", "secrets").stderr.lower()
