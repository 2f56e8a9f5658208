"""Where a manifest runs on a cluster (ClusterTarget), and the manifest checked against it (Checked).

A ClusterTarget is everything a run's or a schedule's objects take besides the manifest: the job image,
the store, the namespace, the store's Secret, input overrides, the agent's grace and the Job's TTL. It
is checked once, when built. The kubernetes backend builds it from a prepared plan and the settings
(runner.backends.kubernetes.target.target_for) for `runner submit`, `runner render --kubernetes` and
`runner schedule apply` alike, so what a dry run prints is what a submit sends.

`check` then holds a manifest against a target: what only the two together decide (its inputs' sources,
its env against the store's Secret, its mounts, the size of what the API server stores).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runner.errors import UserError
from runner.render.kubernetes.checks import (
    check_env,
    check_grace,
    check_image,
    check_manifest_size,
    check_mounts,
    check_name,
    check_notify,
    check_object_name,
    check_store,
    check_ttl,
    input_sources,
    mount_path,
)
from runner.render.kubernetes.conventions import (
    DEFAULT_GRACE,
    INPUTS_ANNOTATION,
    MANIFEST_SHA256,
    MAX_ANNOTATIONS_BYTES,
    TTL_SECONDS,
)
from runner.render.manifest import resolved_yaml
from runner.spec import JobManifest

NAMESPACE_HINT = "use the name of an existing namespace, like ml"


@dataclass(frozen=True)
class ClusterTarget:
    """Where and how a manifest runs on a cluster; built once, checked when built.

    image         the built job image (its entrypoint is the agent)
    store_url     the artifact store the agent collects into: s3://bucket[/prefix]
    namespace     where the objects go; None: the manifest's spec.kubernetes.namespace, else none
                  (kubectl's current namespace). The backend always resolves one (target_for).
    store_secret  a Secret with the store's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
                  optionally AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION); without it the
                  pod relies on the node's or the service account's cloud identity
    inputs        input name -> source, overriding the manifest's (runner submit --input)
    grace         RUNNER_GRACE, the agent's SIGTERM-to-SIGKILL time for the command
    ttl_seconds   how long Kubernetes keeps the finished Job

    Raises UserError for what cannot run on a cluster: an image that is no reference, a store pods
    cannot reach or a URL with credentials, names the API server refuses, a grace or TTL out of range.
    """

    image: str
    store_url: str
    namespace: str | None = None
    store_secret: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    grace: float = DEFAULT_GRACE
    ttl_seconds: int = TTL_SECONDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))  # frozen all through
        check_image(self.image)
        check_store(self.store_url)
        if self.store_secret is not None:
            check_object_name(self.store_secret, "store secret")
        if self.namespace is not None:
            check_name(self.namespace, "namespace", NAMESPACE_HINT)
        check_grace(self.grace)
        check_ttl(self.ttl_seconds)


@dataclass(frozen=True)
class Checked:
    """A manifest held against a target, checked once: what a run's and a schedule's objects share
    (the manifest as stored, its digest, the objects' annotations, the namespace, where the outputs and
    inputs are mounted)."""

    manifest: JobManifest
    target: ClusterTarget
    manifest_text: str
    digest: str
    annotations: dict[str, str]
    namespace: str | None
    outputs: str
    input_paths: list[str]
    # input name -> where it comes from (overrides applied): s3:// ones are fetched by the agent
    # (RUNNER_INPUTS), pvc:// ones mounted
    input_sources: dict[str, str] = field(default_factory=dict)


def check(manifest: JobManifest, target: ClusterTarget, manifest_text: str | None = None) -> Checked:
    """manifest against target (manifest_text: the resolved manifest as stored with the run, default
    resolved_yaml(manifest)). Raises UserError for local input paths, credentials in input URLs or in
    the manifest's env, mounts over the container's system directories, and objects larger than the
    API server stores."""
    if manifest_text is None:
        manifest_text = resolved_yaml(manifest)
    spec = manifest.spec
    namespace = target.namespace if target.namespace is not None else spec.kubernetes.namespace
    if namespace is not None:
        check_name(namespace, "namespace", NAMESPACE_HINT)
    check_manifest_size(manifest_text)
    sources = input_sources(manifest, target.inputs)
    check_env(manifest, target.store_secret)
    check_notify(manifest)
    outputs = mount_path(spec.outputs.path)
    input_paths = [mount_path(item.path) for item in spec.inputs]
    check_mounts(
        {"spec.outputs.path": outputs}
        | {f"input {item.name!r}": path for item, path in zip(spec.inputs, input_paths, strict=True)}
    )
    digest = hashlib.sha256(manifest_text.encode("utf-8")).hexdigest()
    annotations = dict(manifest.metadata.annotations)
    annotations[MANIFEST_SHA256] = digest
    if sources:
        # Where each input comes from (the agent fetches the s3:// ones, pvc:// ones are mounted).
        annotations[INPUTS_ANNOTATION] = json.dumps(sources, sort_keys=True, separators=(",", ":"))
    if (
        sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())
        > MAX_ANNOTATIONS_BYTES
    ):
        raise UserError(
            "metadata.annotations and the inputs' sources exceed the 256KiB Kubernetes allows on an object",
            hint="keep annotations short",
        )
    return Checked(
        manifest, target, manifest_text, digest, annotations, namespace, outputs, input_paths, sources
    )
