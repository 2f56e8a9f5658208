"""Which kubeconfigs runner reads from without the Kubernetes client, and what it takes from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.backends.kubernetes.pure.kubeconfig import (
    Secret,
    StaticAccess,
    namespace_of,
    static_access,
)

HERE = Path("/home/me/.kube")


def kubeconfig(user: dict[str, Any], cluster: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://other:6443"}},
            {"name": "c", "cluster": {"server": "https://kube:6443/", **(cluster or {})}},
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "elsewhere", "context": {"cluster": "other", "user": "u", "namespace": "there"}},
            {"name": "here", "context": {"cluster": "c", "user": "u", **context}},
        ],
        "current-context": "here",
    }


def test_a_client_certificate_from_files_relative_to_the_kubeconfig() -> None:
    document = kubeconfig(
        {"client-certificate": "me.crt", "client-key": "/keys/me.key"},
        {"certificate-authority": "ca.crt"},
        namespace="ml",
    )
    assert static_access(document, None, HERE) == StaticAccess(
        server="https://kube:6443",
        authority=Secret(path=HERE / "ca.crt"),
        certificate=Secret(path=HERE / "me.crt"),
        key=Secret(path=Path("/keys/me.key")),
    )
    assert namespace_of(document, None) == "ml"


def test_inline_data_is_preferred_to_a_path_as_kubectl_prefers_it() -> None:
    document = kubeconfig(
        {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ", "client-key": "ignored"},
        {"certificate-authority-data": "Q0E=", "certificate-authority": "ignored", "tls-server-name": "kube"},
    )
    access = static_access(document, None, HERE)
    assert access is not None
    assert (access.authority, access.certificate, access.key) == (
        Secret(data="Q0E="),
        Secret(data="Q0VSVA=="),
        Secret(data="S0VZ"),
    )
    assert (access.server_name, access.verify, namespace_of(document, None)) == ("kube", True, "default")


def test_tokens_and_token_files() -> None:
    access = static_access(kubeconfig({"token": "t", "tokenFile": "ignored"}), None, HERE)
    assert access is not None and (access.token, access.token_file) == ("t", None)
    access = static_access(kubeconfig({"tokenFile": "token"}), None, HERE)
    assert access is not None and (access.token, access.token_file) == (None, HERE / "token")
    insecure = static_access(kubeconfig({}, {"insecure-skip-tls-verify": True}), None, HERE)
    assert insecure is not None and not insecure.verify and insecure.token is None


def test_the_named_context_is_read() -> None:
    document = kubeconfig({"token": "t"})
    access = static_access(document, "elsewhere", HERE)
    assert access is not None and access.server == "https://other:6443"
    assert namespace_of(document, "elsewhere") == "there"


@pytest.mark.parametrize(
    "user",
    [
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}},
        {"auth-provider": {"name": "oidc"}},
        {"username": "admin", "password": "secret"},
        {"token": "t", "as": "someone-else"},
        {"token": "t", "as-groups": ["system:masters"]},
        {"client-certificate": "me.crt"},  # half a key pair
    ],
)
def test_credentials_made_at_run_time_or_borrowed_are_the_clients(user: dict[str, Any]) -> None:
    assert static_access(kubeconfig(user), None, HERE) is None


def test_a_proxy_or_what_the_context_lacks_is_the_clients() -> None:
    assert static_access(kubeconfig({"token": "t"}, {"proxy-url": "http://proxy:3128"}), None, HERE) is None
    assert static_access(kubeconfig({"token": "t"}), "nowhere", HERE) is None
    missing_cluster = kubeconfig({"token": "t"})
    missing_cluster["clusters"] = []
    assert static_access(missing_cluster, None, HERE) is None
    assert static_access({"kind": "Config"}, None, HERE) is None


def test_the_namespace_as_kubectl_takes_it() -> None:
    document = kubeconfig({"token": "t"}, namespace="ml")
    assert namespace_of(document, None) == "ml"
    assert namespace_of(document, "elsewhere") == "there"
    assert namespace_of(document, "nowhere") == "ml"  # the current context's
    assert namespace_of(kubeconfig({"token": "t"}), None) == "default"
    assert namespace_of({}, None) == "default"
