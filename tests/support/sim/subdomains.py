"""Cluster DNS for the pods of a headless Service's subdomain, as the Docker runtime gives it.

A pod with `spec.subdomain` (a multi-worker run's Indexed Job: hostname `<job>-<index>`) must reach its
peers by `<hostname>.<subdomain>` (and `.<namespace>.svc`, `.svc.cluster.local`), and each listens on
the same port: they cannot share the host's network as single pods do. So every subdomain of a
namespace gets a user-defined Docker network, on which Docker's own DNS answers each pod container's
aliases, and the container its hostname. Off the host's network, 127.0.0.1 is the container itself:
what the pod's env points at on the host's loopback (the S3 stand-in) is pointed at the network's
gateway instead, where a forwarder (a thread per port) passes connections on to the host's loopback.
Networks and forwarders go when their last pod does, and all of them with the runtime (close).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

LOOPBACK = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d+)")


def aliases(pod: Mapping[str, Any]) -> list[str]:
    """The names cluster DNS gives a pod of a headless Service's subdomain."""
    meta, spec = pod["metadata"], pod["spec"]
    short = f"{hostname(pod)}.{spec['subdomain']}"
    namespace = meta.get("namespace", "default")
    return [short, f"{short}.{namespace}.svc", f"{short}.{namespace}.svc.cluster.local"]


def hostname(pod: Mapping[str, Any]) -> str:
    """The pod's hostname: spec.hostname (the job controller sets <job>-<index>), else its name."""
    return str(pod["spec"].get("hostname") or pod["metadata"]["name"])[:63]


class Subdomains:
    """The Docker networks of subdomains, by the runtime labelled `label` (key=value)."""

    def __init__(self, client: docker.DockerClient, runtime_id: str, label: tuple[str, str]) -> None:
        self.client = client
        self.runtime_id = runtime_id
        self.label = label
        self._lock = threading.Lock()
        self._users: dict[str, set[str]] = {}  # network name -> pod uids on it
        self._gateways: dict[str, str] = {}
        self._forwarders: dict[tuple[str, int], _Forwarder] = {}

    def join(self, pod: Mapping[str, Any], uid: str, env: dict[str, str]) -> dict[str, Any]:
        """The containers.create keywords that put the pod on its subdomain's network; env's loopback
        addresses are rewritten to the network's gateway, forwarded to the host's loopback."""
        import docker

        namespace = pod["metadata"].get("namespace", "default")
        name = f"sim-{self.runtime_id}-{namespace}-{pod['spec']['subdomain']}"
        with self._lock:
            if name not in self._users:
                network = self.client.networks.create(name, driver="bridge", labels=dict([self.label]))
                network.reload()
                self._gateways[name] = network.attrs["IPAM"]["Config"][0]["Gateway"]
                self._users[name] = set()
            self._users[name].add(uid)
            gateway = self._gateways[name]
            for key, value in env.items():
                for port in LOOPBACK.findall(value):
                    self._forward(gateway, int(port))
                env[key] = LOOPBACK.sub(lambda match: f"{gateway}:{match[1]}", value)
        endpoint = docker.types.EndpointConfig(self.client.api.api_version, aliases=aliases(pod))
        return {"network": name, "networking_config": {name: endpoint}, "hostname": hostname(pod)}

    def leave(self, uid: str) -> None:
        """The pod is gone: its network goes with the last pod on it."""
        with self._lock:
            empty = [name for name, users in self._users.items() if uid in users and len(users) == 1]
            for users in self._users.values():
                users.discard(uid)
            for name in empty:
                self._users.pop(name)
                self._gateways.pop(name)
        for name in empty:
            self._remove(name)

    def close(self) -> None:
        """Every network of the runtime (by its label) and every forwarder."""
        with self._lock:
            forwarders = list(self._forwarders.values())
            self._forwarders.clear()
            self._users.clear()
        for forwarder in forwarders:
            forwarder.close()
        key, value = self.label
        for network in self.client.networks.list(filters={"label": f"{key}={value}"}):
            self._remove(str(network.name))

    def _remove(self, name: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.networks.get(name).remove()

    def _forward(self, gateway: str, port: int) -> None:
        if (gateway, port) not in self._forwarders:
            self._forwarders[(gateway, port)] = _Forwarder(gateway, port)


class _Forwarder:
    """Connections to gateway:port passed on to 127.0.0.1:port, both ways, a thread per direction."""

    def __init__(self, gateway: str, port: int) -> None:
        self.port = port
        self.server = socket.create_server((gateway, port))
        self.closed = False
        threading.Thread(target=self._accept, name=f"sim-forward-{port}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                inbound, _ = self.server.accept()
            except OSError:
                return
            try:
                outbound = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                inbound.close()
                continue
            outbound.settimeout(None)
            for source, sink in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
