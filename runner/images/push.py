"""Pushing a built job image to the registry its name starts with; the registry's digest comes back.

An image the registry already holds under its tag (content-hash tags make that the usual case) is not
pushed again: one HEAD of the tag's manifest says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runner.images.engine import (
    BuildError,
    Progress,
    api_message,
    connect_engine,
    connection_errors,
    event_error,
    is_error_event,
    stopped_answering,
)

if TYPE_CHECKING:
    import docker

    from runner.images.build import BuiltImage

_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
REGISTRY_CHECK_TIMEOUT_S = 5


def has_registry(reference: str) -> bool:
    """Whether the reference's first component names a registry (a host with '.' or ':', or localhost)."""
    first, slash, _ = reference.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def push_image(image: BuiltImage, *, progress: Progress, client: docker.DockerClient | None = None) -> str:
    """Push the image to the registry its reference names; the registry's digest, ``sha256:...``."""
    import docker

    repository, _, tag = image.reference.rpartition(":")
    registry = repository.split("/", 1)[0]
    if not has_registry(repository):
        raise BuildError(
            f"cannot push {image.reference}: its name has no registry",
            hint="build it with a registry (e.g. 127.0.0.1:5000) so that its name starts with the registry",
        )
    client = connect_engine() if client is None else client
    present = _already_pushed(client, image, repository, tag)
    if present is not None:
        progress(f"{image.reference} is already in {registry} ({present[:19]}...): nothing to push")
        return present
    try:
        events = client.api.push(repository, tag=tag, stream=True, decode=True)
        digest = _follow_push(events, image.reference, registry, progress)
    except docker.errors.ImageNotFound:
        raise BuildError(
            f"cannot push {image.reference}: no such image on this engine",
            hint="build it first (the engine may have pruned it)",
        ) from None
    except docker.errors.APIError as error:
        raise BuildError(
            f"pushing {image.reference} failed: {api_message(error)}", hint=_push_hint(registry, "")
        ) from None
    except connection_errors() as error:
        raise stopped_answering(f"pushing {image.reference}", error) from None
    if digest is None:
        raise BuildError(
            f"pushing {image.reference} to {registry} ended without a digest from the registry",
            hint="push again; if it persists, check the registry's log",
        )
    return digest


def _follow_push(events: Iterable[Any], reference: str, registry: str, progress: Progress) -> str | None:
    """Pass each layer's state changes to progress; the digest the registry reported, if any."""
    digest: str | None = None
    last: dict[str, str] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        if is_error_event(event):
            raise BuildError(
                f"pushing {reference} to {registry} failed: {event_error(event)}",
                hint=_push_hint(registry, event_error(event)),
            )
        digest = _digest_after(event, digest)
        status = event.get("status")
        if isinstance(status, str) and status:
            layer = str(event.get("id", ""))
            # Per-layer state changes only: not every "Pushing" progress tick.
            if last.get(layer) != status:
                last[layer] = status
                progress(f"{layer}: {status}" if layer else status)
    return digest


def _digest_after(event: dict[str, Any], digest: str | None) -> str | None:
    """The push's digest after event: an aux Digest replaces it, a "digest: sha256:..." status only
    fills it in."""
    aux = event.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
        return str(aux["Digest"])
    status = event.get("status")
    if digest is None and isinstance(status, str) and (found := _PUSHED_DIGEST.search(status)):
        return found.group(1)
    return digest


def _already_pushed(client: docker.DockerClient, image: BuiltImage, repository: str, tag: str) -> str | None:
    """The registry's digest when it already holds this very image under the tag, else None.

    Content-hash tags make pushes of an unchanged job no-ops, but `docker push` still costs the engine
    a round of layer checks per call (~100 ms), which dominates submitting thousands of runs. One HEAD
    of the tag's manifest answers the same question in a millisecond: when its digest is one the local
    image was pushed or pulled as (RepoDigests), the registry has it. Anything unexpected (auth, TLS,
    an older registry) answers None and the push goes ahead as before.
    """
    import urllib.error
    import urllib.request

    try:
        known = set(client.images.get(image.reference).attrs.get("RepoDigests") or [])
    except Exception:  # the push itself reports a missing image properly
        return None
    if not any(entry.startswith(f"{repository}@") for entry in known):
        return None
    registry, name = repository.split("/", 1)
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join(_MANIFEST_TYPES)},
    )
    try:
        with urllib.request.urlopen(request, timeout=REGISTRY_CHECK_TIMEOUT_S) as answer:
            digest = answer.headers.get("Docker-Content-Digest")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return digest if digest and f"{repository}@{digest}" in known else None


def _push_hint(registry: str, error: str) -> str:
    lowered = error.lower()
    if "does not exist locally" in lowered:
        return "build the image first (ensure_image); the engine may have pruned it"
    if "connection refused" in lowered or "no such host" in lowered or "dial tcp" in lowered:
        return f"no registry answers at {registry}; start it (scripts/engine.sh start runs 127.0.0.1:5000)"
    if "unauthorized" in lowered or "denied" in lowered:
        return f"log in to {registry} (docker login {registry}) or check your rights to push there"
    if "http response to https client" in lowered:
        return f"{registry} speaks plain HTTP: add it to the engine's insecure-registries"
    return f"check that {registry} is up and accepts pushes"
