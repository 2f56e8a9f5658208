"""Secrets and ConfigMaps for the Docker pod runtime, read from a real API server (the ObjectSource of
tests/support/sim/docker_podspec.py), as kubelet reads them when it starts a container."""

from __future__ import annotations

import json
from typing import Any

from tests.support.sim.docker_podspec import Obj, ObjectKind

READ_TIMEOUT = (5, 30)


class ApiObjectSource:
    """find(kind, namespace, name) through core/v1 of the official client; None when it is not there."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def find(self, rt: ObjectKind, namespace: str, name: str) -> Obj | None:
        from kubernetes.client.exceptions import ApiException

        read = {
            "secrets": self.core.read_namespaced_secret,
            "configmaps": self.core.read_namespaced_config_map,
        }.get(rt.plural)
        if read is None:
            raise ValueError(f"no {rt.plural} for pods here")
        try:
            response = read(name, namespace, _preload_content=False, _request_timeout=READ_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: Obj = json.loads(response.data)
        return found

    def service_account_token(self, pod: Obj, audience: str | None, expiration_seconds: int) -> str:
        """A token of the pod's service account bound to the pod (TokenRequest), as kubelet mounts it."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": max(expiration_seconds, 600),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        response = self.core.create_namespaced_service_account_token(
            spec.get("serviceAccountName") or "default",
            meta["namespace"],
            body,
            _preload_content=False,
            _request_timeout=READ_TIMEOUT,
        )
        return str(json.loads(response.data)["status"]["token"])
