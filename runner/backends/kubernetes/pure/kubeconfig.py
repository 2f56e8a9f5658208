"""What a kubeconfig says about reaching its cluster, where it says it with static credentials only.

A kubeconfig whose context's user authenticates with a client certificate or a bearer token (a token
file among them) needs nothing but TLS and a header to read from its API server: runner's reads then
go straight through urllib3 (runner.backends.kubernetes.reads), without importing the Kubernetes
client, whose import costs more than the rest of a `runner list --cluster`. Anything else (an exec
plugin, an auth provider, basic auth, impersonation, a proxy) is the client's to do: static_access
answers None, and the client reads that kubeconfig as kubectl would. Nothing here reads a file: paths
are resolved against the kubeconfig's directory, as kubectl resolves them, and read by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# a user with any of these needs the client: credentials made at run time, or requests made as another
USER_NEEDS_CLIENT = frozenset(
    {"exec", "auth-provider", "username", "password", "as", "as-uid", "as-groups", "as-user-extra"}
)
CLUSTER_NEEDS_CLIENT = frozenset({"proxy-url"})


@dataclass(frozen=True)
class Secret:
    """PEM from a file (path) or inline (data, as the kubeconfig's *-data fields hold it, base64)."""

    path: Path | None = None
    data: str | None = None


@dataclass(frozen=True)
class StaticAccess:
    """How to read from a cluster with static credentials: its server, how to trust it, and who asks."""

    server: str  # https://host:port, or http:// where the kubeconfig says so
    authority: Secret | None = None  # the CA to verify the server with; None: the system's
    verify: bool = True  # False: insecure-skip-tls-verify
    server_name: str | None = None  # tls-server-name: the name the server's certificate holds
    certificate: Secret | None = None  # the client's certificate and key, both or neither
    key: Secret | None = None
    token: str | None = None
    token_file: Path | None = None  # read for each connection's header, as it may be rotated


def context_of(document: Mapping[str, Any], context: str | None) -> Mapping[str, Any] | None:
    """The named context's body (or the current context's), None where there is none."""
    name = context or document.get("current-context")
    return _named(document.get("contexts"), name, "context")


def namespace_of(document: Mapping[str, Any], context: str | None) -> str:
    """The namespace of the named context (the current one where none of that name is), as kubectl uses
    it: "default" where none is set."""
    chosen = (context_of(document, context) if context else None) or context_of(document, None) or {}
    return str(chosen.get("namespace") or "default")


def static_access(document: Mapping[str, Any], context: str | None, directory: Path) -> StaticAccess | None:
    """How to read from the named (or current) context's cluster, where its user's credentials are
    static; None where the client must read the kubeconfig itself (see the module's text), or where
    the kubeconfig lacks what the context names (the client then says what is wrong)."""
    chosen = context_of(document, context)
    if chosen is None:
        return None
    cluster = _named(document.get("clusters"), chosen.get("cluster"), "cluster")
    user = _named(document.get("users"), chosen.get("user"), "user") if chosen.get("user") else {}
    if cluster is None or user is None or not cluster.get("server"):
        return None
    if CLUSTER_NEEDS_CLIENT & cluster.keys() or USER_NEEDS_CLIENT & {k for k, v in user.items() if v}:
        return None
    certificate = _secret(user, "client-certificate", directory)
    key = _secret(user, "client-key", directory)
    if (certificate is None) != (key is None):
        return None  # half a key pair: the client says so
    token_file = user.get("tokenFile")
    return StaticAccess(
        server=str(cluster["server"]).rstrip("/"),
        authority=_secret(cluster, "certificate-authority", directory),
        verify=not cluster.get("insecure-skip-tls-verify"),
        server_name=cluster.get("tls-server-name") or None,
        certificate=certificate,
        key=key,
        token=user.get("token") or None,
        token_file=None if user.get("token") or not token_file else directory / str(token_file),
    )


def _named(entries: Any, name: Any, body: str) -> Mapping[str, Any] | None:
    """The body of the entry of that name (the first, as the client takes it), None where none is."""
    for entry in entries or []:
        if isinstance(entry, Mapping) and entry.get("name") == name and name is not None:
            found = entry.get(body)
            return found if isinstance(found, Mapping) else {}
    return None


def _secret(section: Mapping[str, Any], field: str, directory: Path) -> Secret | None:
    """field-data (inline, preferred as kubectl prefers it) or field (a path, relative to the
    kubeconfig's directory)."""
    if section.get(f"{field}-data"):
        return Secret(data=str(section[f"{field}-data"]))
    if section.get(field):
        return Secret(path=directory / str(section[field]))
    return None
