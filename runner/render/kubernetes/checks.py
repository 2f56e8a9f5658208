"""What cannot run on a cluster, refused with a UserError before anything is rendered or sent: local
paths where a pod needs a URL, credentials in URLs or in the manifest's env, mounts over the
container's system directories, names the API server would refuse. Pure; target.py applies them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from runner.errors import UserError
from runner.render.kubernetes.conventions import (
    CLUSTER_STORE_SCHEMES,
    MAX_CONFIG_MAP_BYTES,
    MAX_GRACE,
    NO_MOUNTS_INSIDE,
    PROTECTED_PATHS,
    SECRET_VARIABLES,
    STORE_SECRET_KEYS,
)
from runner.spec import JobManifest
from runner.spec.env import EnvFrom
from runner.spec.model import check_input_source, input_kind
from runner.spec.names import check_dns_label, check_dns_subdomain

_CREDENTIAL_PARAMETER = re.compile(r"secret|token|passw|signature|credential|access.?key", re.IGNORECASE)


def check_name(value: str, what: str, hint: str) -> None:
    """value must be a DNS label (a run id, a namespace, a CronJob's name)."""
    try:
        check_dns_label(value, what)
    except ValueError as problem:
        raise UserError(str(problem), hint=hint) from None


def check_object_name(value: str, what: str) -> None:
    """value must be a DNS subdomain (a Secret's name)."""
    try:
        check_dns_subdomain(value, what)
    except ValueError as problem:
        raise UserError(str(problem), hint="name the Secret, like runner-store") from None


def check_image(image: str) -> None:
    if not image or not image.isprintable() or any(c.isspace() for c in image):
        raise UserError(
            f"{image!r} is not an image reference", hint="build the job image first (runner build)"
        )


def check_grace(grace: float) -> None:
    if not (math.isfinite(grace) and 0 <= grace <= MAX_GRACE):
        raise UserError(
            f"the grace period {grace!r} is not a number of seconds up to {MAX_GRACE}",
            hint="set RUNNER_GRACE to e.g. 10",
        )


def check_ttl(ttl_seconds: int) -> None:
    if ttl_seconds < 0:
        raise UserError(f"ttlSecondsAfterFinished {ttl_seconds} is negative")


def check_manifest_size(manifest_text: str) -> None:
    if len(manifest_text.encode("utf-8")) > MAX_CONFIG_MAP_BYTES:
        raise UserError(
            "the resolved manifest is larger than a ConfigMap can hold (1MiB)",
            hint="keep data and long text out of the manifest",
        )


def remote(url: str, schemes: tuple[str, ...] | None = None) -> bool:
    """Whether url names a host (s3://bucket/..., https://host/...), not a path here (file:, local:)."""
    if "://" not in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed '[' in the host
        return False
    if schemes is not None and parts.scheme not in schemes:
        return False
    return parts.scheme not in ("", "file", "local") and bool(parts.netloc)


def check_store(url: str) -> None:
    check_no_credentials(url, "store")
    if not remote(url, CLUSTER_STORE_SCHEMES):
        raise UserError(
            f"store {url!r}: pods on a cluster collect into object storage, not a path on this machine",
            hint="set RUNNER_STORE to an s3:// URL every node can reach, e.g. s3://bucket/runner",
        )


def check_no_credentials(url: str, what: str) -> None:
    """Refuse a URL with user:password@ or a credential-like query parameter, without echoing it.

    Any '@' before the query counts: a password with a '/' (AWS secret keys have them) ends the
    authority early and would hide the rest in the path.
    """
    hint = (
        "keep credentials in a Secret (the store's: --store-secret), never in a URL; write a literal @ as %40"
    )
    if "@" in url.split("?", 1)[0].split("#", 1)[0]:
        raise UserError(f"{what}: the URL carries credentials ('@'); it is not shown here", hint=hint)
    try:
        query = urlsplit(url).query
    except ValueError:
        return  # not a URL: refused elsewhere
    for key, _ in parse_qsl(query, keep_blank_values=True):
        if _CREDENTIAL_PARAMETER.search(key):
            raise UserError(f"{what}: the URL carries a credential in its query ({key})", hint=hint)


def input_sources(manifest: JobManifest, overrides: Mapping[str, str]) -> dict[str, str]:
    """Each input's source (overrides win), checked to be something a pod can get.

    s3:// prefixes are fetched by the agent into an empty directory at the input's path (RUNNER_INPUTS);
    pvc://claim[/subpath] is mounted read-only there; other URLs are recorded in the runner.dev/inputs
    annotation only. A path on this machine means nothing on a cluster node: `runner submit` uploads it
    into the store first (its content-addressed s3:// prefix is what reaches here), so one left is refused.
    """
    names = [item.name for item in manifest.spec.inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise UserError(
            f"input {unknown[0]!r}: the manifest has no such input (its inputs: {', '.join(names) or 'none'})"
        )
    sources: dict[str, str] = {}
    for item in manifest.spec.inputs:
        source = overrides.get(item.name, item.source)
        check_no_credentials(source, f"input {item.name!r}")
        kind = input_kind(source)
        if kind == "pvc":
            try:
                check_input_source(source)
            except ValueError as problem:
                raise UserError(f"input {item.name!r}: {problem}") from None
        elif not remote(source):
            raise UserError(
                f"input {item.name!r}: {source!r} is not a URL a pod can fetch from; pods on a cluster "
                "cannot read paths on this machine",
                hint="runner submit uploads a local input into the store; or put the data in object "
                f"storage and pass it, e.g. --input {item.name}=s3://bucket/{item.name}/",
            )
        sources[item.name] = source
    return sources


def check_notify(manifest: JobManifest) -> None:
    """spec.notify's webhook on a cluster: the agent in the pod posts, so the URL is a Secret's key."""
    notify = manifest.spec.notify
    if notify is not None and notify.webhook.local:
        raise UserError(
            f"spec.notify.webhook: {notify.webhook.kind} is read on this machine; the agent in the pod "
            "posts when a cluster run ends and cannot read it",
            hint="put the URL in a Secret of the namespace and write webhook: "
            "{secretKeyRef: {name: SECRET, key: KEY}}",
        )


def check_env(manifest: JobManifest, store_secret: str | None) -> None:
    """Values in spec.env are written into the Job (and its ConfigMap): secrets must be secretKeyRef
    references; fromEnv and fromFile name things on this machine that a pod cannot read."""
    for name, entry in manifest.spec.env.items():
        if isinstance(entry, EnvFrom) and entry.local:
            raise UserError(
                f"spec.env.{name}: {entry.kind} is read on this machine when a local attempt starts; "
                "a pod on a cluster cannot read it",
                hint=f"put the value in a Secret of the namespace and write {name}: "
                "{secretKeyRef: {name: SECRET, key: KEY}}",
            )
        if name in SECRET_VARIABLES and isinstance(entry, str):
            raise UserError(
                f"spec.env.{name}: a secret would be written into the Job, for anyone who can read Jobs",
                hint=f"put it in a Secret and write {name}: {{secretKeyRef: {{name: SECRET, key: KEY}}}}, "
                "or pass the store's Secret as the store secret",
            )
        if store_secret is not None and name in dict(STORE_SECRET_KEYS):
            raise UserError(
                f"spec.env.{name}: also comes from the store secret {store_secret!r}",
                hint=f"set {name} in the Secret, or remove it from spec.env",
            )


def mount_path(path: str) -> str:
    """A container path as a mount point: no trailing, doubled or '.' separators."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def check_mounts(paths: Mapping[str, str]) -> None:
    for what, path in paths.items():
        for protected in PROTECTED_PATHS:
            if _within(protected, path):
                raise UserError(
                    f"{what}: a volume at {path} would hide {protected}, which the container needs",
                    hint="use a directory of its own, like /outputs or /data/<name>",
                )
        for special in NO_MOUNTS_INSIDE:
            if _within(path, special):
                raise UserError(f"{what}: {path} is inside {special}, where nothing can be mounted")


def _within(path: str, directory: str) -> bool:
    """Whether path is directory or lies inside it."""
    return (path.rstrip("/") + "/").startswith(directory.rstrip("/") + "/")
