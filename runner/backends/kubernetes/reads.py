"""GETs straight to the API server through urllib3, for kubeconfigs with static credentials.

Importing the Kubernetes client (its configuration loader, its models, pydantic under them) costs about
a quarter of a second, more than a `runner list --cluster` of thousands of Jobs spends on anything
else. A read needs none of it where the kubeconfig's user is a client certificate or a bearer token
(runner.backends.kubernetes.pure.kubeconfig): a TLS context, a header and urllib3's pool do it, with the
client's retries and timeouts (client.retry_policy). Writes, watches and streams still go through the
client, and so does every request of a kubeconfig that needs it (an exec plugin, a cloud's auth
provider, several KUBECONFIG files, none: in-cluster).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runner.backends.kubernetes.pure.kubeconfig import Secret, StaticAccess

POOL_SIZE = 8  # connections kept per host: a prefetching list and its caller read at once


class DirectReads:
    """GETs on one cluster with static credentials, over a pool of kept connections (thread-safe)."""

    def __init__(self, access: StaticAccess, retries: Any, timeout: tuple[float, float]) -> None:
        import urllib3

        self.access = access
        self._retries = retries
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        options: dict[str, Any] = {"maxsize": POOL_SIZE}
        if access.server.startswith("https:"):
            options["ssl_context"] = tls_context(access)
            if access.server_name:
                options["server_hostname"] = access.server_name
            if not access.verify:
                options["cert_reqs"] = "CERT_NONE"
        self._pool = urllib3.PoolManager(**options)

    def get(self, path: str, query: Sequence[tuple[str, Any]], accept: str) -> Any:
        """The answer (urllib3's response, its body not yet read) to GET path?query, retried as the
        client retries (429 and 5xx with backoff, a refused connection once)."""
        url = self.access.server + path + query_string(query)
        return self._pool.request(
            "GET",
            url,
            headers=self._headers(accept),
            retries=self._retries,
            timeout=self._timeout,
            preload_content=False,
        )

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "runner"}
        token = self.access.token
        if token is None and self.access.token_file is not None:
            token = self.access.token_file.read_text().strip()  # read each time: it may be rotated
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def query_string(query: Sequence[tuple[str, Any]]) -> str:
    """?key=value&..., each quoted as the Kubernetes client quotes them ("/" left as it is)."""
    if not query:
        return ""
    return "?" + "&".join(f"{quote(str(key))}={quote(str(value))}" for key, value in query)


def tls_context(access: StaticAccess) -> ssl.SSLContext:
    """A TLS context that trusts the kubeconfig's CA (else the system's) and presents its client
    certificate, if it names one."""
    context = ssl.create_default_context()
    if not access.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif access.authority is not None:
        if access.authority.data is not None:
            context.load_verify_locations(cadata=pem(access.authority))
        elif access.authority.path is not None:
            context.load_verify_locations(cafile=str(access.authority.path))
    if access.certificate is not None and access.key is not None:
        load_key_pair(context, access.certificate, access.key)
    return context


def load_key_pair(context: ssl.SSLContext, certificate: Secret, key: Secret) -> None:
    """The client's certificate and key into context; inline ones through files only this user can
    read, removed once loaded (ssl loads key pairs from files only)."""
    if certificate.path is not None and key.path is not None:
        context.load_cert_chain(str(certificate.path), str(key.path))
        return
    with tempfile.TemporaryDirectory(prefix="runner-kube-") as scratch:
        paths = []
        for name, secret in (("client.crt", certificate), ("client.key", key)):
            path = Path(scratch) / name
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secret.path.read_text() if secret.path is not None else pem(secret))
            paths.append(str(path))
        context.load_cert_chain(paths[0], paths[1])


def pem(secret: Secret) -> str:
    """An inline secret's PEM text (the kubeconfig holds it base64-encoded)."""
    return base64.b64decode(secret.data or "").decode("ascii")
