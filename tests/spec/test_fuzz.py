"""Property tests for the manifest layer: whatever comes in, a manifest or a ManifestError comes out.

1. Arbitrary bytes and text never raise anything but ManifestError.
2. Generated YAML structures, and mutations of a valid manifest, give a valid manifest or a ManifestError
   whose every line is "<name>:<line>:<column>: message", with a line inside the file.
3. Every valid manifest round-trips: render the resolved YAML, parse it again, get an equal model.
"""

# ruff: noqa: E501 - expected messages are written out whole, one per line, as users see them

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import ManifestError
from runner.render import resolved_json, resolved_yaml
from runner.spec import JobManifest, parse_manifest
from runner.spec.quantities import format_cpu, format_duration, format_memory

NAME = "fuzz.yaml"
PROBLEM = re.compile(r"fuzz\.yaml:(\d+):(\d+): [^\n]+")
PYDANTIC_WORDING = re.compile(
    r"Input should|Value error|Field required|Extra inputs|validation error|pydantic"
)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    # The project conftest has an autouse, function-scoped fixture; these tests do not use it.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

VALID: dict[str, Any] = {
    "apiVersion": "runner/v1",
    "kind": "Job",
    "metadata": {"name": "mnist", "labels": {"team": "vision"}},
    "spec": {
        "image": {
            "base": "tensorflow/tensorflow:2.21.0-gpu",
            "requirements": "requirements.txt",
            "context": ".",
        },
        "command": ["python", "train.py", "--epochs", "5"],
        "env": {"TF_CPP_MIN_LOG_LEVEL": "1"},
        "resources": {"gpu": 1, "gpuType": "H100", "cpu": 4, "memory": "16Gi"},
        "inputs": [{"name": "data", "source": "s3://bucket/malaria/", "path": "/data"}],
        "outputs": {"path": "/outputs"},
        "retries": 2,
        "timeout": "2h",
        "schedule": {"cron": "0 2 * * *", "timeZone": "Asia/Seoul", "concurrency": "Forbid"},
        "kubernetes": {"namespace": "ml", "queue": "team-a", "priorityClass": "batch-low"},
    },
}


def outcome(raw: bytes | str) -> JobManifest | None:
    """Parse raw; a ManifestError must be well formed (checked here); anything else fails the test."""
    try:
        return parse_manifest(raw, NAME)[0]
    except ManifestError as error:
        check_problems(error, raw)
        return None


def check_problems(error: ManifestError, raw: bytes | str) -> None:
    assert error.problems, "a ManifestError without problems"
    assert error.message == "\n".join(error.problems)
    # YAML also breaks lines at \r, NEL, LS and PS: count every kind, for an upper bound.
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    lines = sum(text.count(mark) for mark in "\n\r\x85\u2028\u2029") + 1
    positions = []
    for problem in error.problems:
        match = PROBLEM.fullmatch(problem)
        assert match, f"malformed problem line: {problem!r}"
        line, column = int(match[1]), int(match[2])
        assert 1 <= line <= lines + 1, problem
        assert column >= 1, problem
        positions.append((line, column))
        assert "Traceback" not in problem
        # pydantic's own phrasing must not leak (user text, quoted in messages, may say anything)
        unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", problem)
        assert not PYDANTIC_WORDING.search(unquoted), problem
    assert positions == sorted(positions), error.problems


K8S_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_invariants(manifest: JobManifest) -> None:
    """What any accepted manifest guarantees to the layers below (checked independently of the model)."""
    assert K8S_DNS_LABEL.fullmatch(manifest.name) and len(manifest.name) <= 52, manifest.name
    for key, value in manifest.metadata.labels.items():
        assert K8S_LABEL_VALUE.fullmatch(key.rpartition("/")[2]) and key.rpartition("/")[2], key
        assert K8S_LABEL_VALUE.fullmatch(value) and len(value) <= 63, value
    spec = manifest.spec
    assert spec.command and spec.command[0].strip()
    assert all(isinstance(arg, str) for arg in spec.command)
    for name, env_value in spec.env.items():
        assert ENV_NAME_RE.fullmatch(name) and not name.startswith("RUNNER_"), name
        assert isinstance(env_value, str)
    assert 0 <= spec.retries <= 20 and type(spec.retries) is int
    assert 0 <= spec.resources.gpu <= 64 and type(spec.resources.gpu) is int
    assert spec.resources.gpu_type is None or spec.resources.gpu > 0
    paths = [spec.outputs.path, *(item.path for item in spec.inputs)]
    assert all(path.startswith("/") and path.isprintable() and path.strip("/") for path in paths), paths
    assert len({item.env_name for item in spec.inputs}) == len(spec.inputs)
    if spec.kubernetes.namespace is not None:
        assert K8S_DNS_LABEL.fullmatch(spec.kubernetes.namespace), spec.kubernetes.namespace


def assert_round_trips(manifest: JobManifest) -> None:
    check_invariants(manifest)
    again = parse_manifest(resolved_yaml(manifest), NAME)[0]
    assert again == manifest
    assert again.resolved() == manifest.resolved()
    assert JobManifest.model_validate(json.loads(resolved_json(manifest))) == manifest


# ------------------------------------------------------------------ 1. raw input

TEXT_KEYS = st.one_of(st.text(max_size=12), st.from_regex(r"[A-Za-z0-9_./-]{1,12}\n?", fullmatch=True))
YAMLISH = st.text(
    alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n\t %@`,?<~=.0123456789/\\\r\x00\x85é")), max_size=200
)


@FUZZ
@given(st.one_of(st.binary(max_size=500), st.text(max_size=300), YAMLISH))
def test_arbitrary_input_gives_a_manifest_or_a_manifest_error(raw: bytes | str) -> None:
    manifest = outcome(raw)
    if manifest is not None:
        assert_round_trips(manifest)


@FUZZ
@given(st.integers(0, 2000), st.one_of(YAMLISH, st.binary(max_size=20)))
def test_junk_spliced_into_a_valid_manifest(offset: int, junk: str | bytes) -> None:
    text = yaml.safe_dump(VALID, sort_keys=False)
    offset %= len(text) + 1
    raw: bytes | str
    if isinstance(junk, bytes):
        raw = text.encode()[:offset] + junk + text.encode()[offset:]
    else:
        raw = text[:offset] + junk + text[offset:]
    manifest = outcome(raw)
    if manifest is not None:
        assert_round_trips(manifest)


@FUZZ
@given(st.one_of(st.text(max_size=70), st.from_regex(r"[a-z0-9-]{1,60}\n?", fullmatch=True)))
def test_any_name_is_a_dns_label_or_refused(name: str) -> None:
    data = {**VALID, "metadata": {"name": name}}
    manifest = outcome(dump(data))
    if manifest is not None:
        assert manifest.name == name
        assert_round_trips(manifest)


@FUZZ
@given(st.dictionaries(TEXT_KEYS, st.one_of(TEXT_KEYS, st.integers(), st.booleans()), max_size=4))
def test_any_env_and_labels_are_valid_or_refused(mapping: dict[str, Any]) -> None:
    data = copy.deepcopy(VALID)
    data["spec"]["env"] = mapping
    data["metadata"]["labels"] = mapping
    manifest = outcome(dump(data))
    if manifest is not None:
        assert_round_trips(manifest)


# ------------------------------------------------------------- 2. structures

FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "spec", "name", "labels", "annotations", "image", "base", "requirements",
    "apt", "context", "command", "env", "resources", "gpu", "gpuType", "cpu", "memory", "inputs", "source",
    "path", "outputs", "retries", "timeout", "schedule", "cron", "timeZone", "concurrency", "suspend",
    "kubernetes", "namespace", "queue", "priorityClass", "serviceAccount",
]  # fmt: skip

# Any UTF-8 text but NUL, which no command argument or environment value can hold (refused by the model).
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    TEXT,
    st.sampled_from(
        ["runner/v1", "Job", "1", "2h", "16Gi", "500m", "@daily", "UTC", "/data", "on", "yes", "~"]
    ),
)
KEYS = st.one_of(st.sampled_from(FIELD_NAMES), TEXT)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@FUZZ
@given(st.dictionaries(KEYS, STRUCTURES, max_size=6))
def test_generated_structures(data: dict[Any, Any]) -> None:
    manifest = outcome(dump(data))
    if manifest is not None:
        assert_round_trips(manifest)


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "apiVersion": st.just("runner/v1"),
            "kind": st.just("Job"),
            "metadata": STRUCTURES,
            "spec": STRUCTURES,
        }
    )
)
def test_generated_sections(data: dict[str, Any]) -> None:
    manifest = outcome(dump(data))
    if manifest is not None:
        assert_round_trips(manifest)


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside data (dict keys and list indexes)."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths_of(value, (*prefix, key)))
    return found


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = parent_of(data, path)
        key = path[-1]
        action = draw(st.sampled_from(["drop", "rename", "retype", "typo"]))
        if action == "drop":
            del parent[key]
        elif action == "retype":
            parent[key] = draw(STRUCTURES)
        elif isinstance(parent, dict):
            if action == "rename":
                new = draw(KEYS)
            else:  # a typo: one character dropped, doubled or changed
                index = draw(st.integers(0, max(len(key) - 1, 0)))
                change = draw(st.sampled_from(["", key[index : index + 1] * 2, draw(TEXT)[:1]]))
                new = key[:index] + change + key[index + 1 :]
            value = parent.pop(key)
            parent[new] = value
        else:
            parent[key] = draw(STRUCTURES)
    return data


@FUZZ
@given(mutated())
def test_mutations_of_a_valid_manifest(data: dict[str, Any]) -> None:
    manifest = outcome(dump(data))
    if manifest is not None:
        assert_round_trips(manifest)


def test_a_typo_in_every_field_is_found_with_a_suggestion() -> None:
    # Not random, but the same idea exhaustively: drop the last letter of every key of the example.
    for path in paths_of(VALID):
        if not isinstance(path[-1], str) or path[-2:-1] in (("env",), ("labels",)):
            continue
        data = copy.deepcopy(VALID)
        parent = parent_of(data, path)
        parent[path[-1][:-1]] = parent.pop(path[-1])
        with_typo = ".".join(str(part) for part in (*path[:-1], path[-1][:-1]))
        with_typo = re.sub(r"\.(\d+)", r"[\1]", with_typo)
        try:
            parse_manifest(dump(data), NAME)
        except ManifestError as error:
            check_problems(error, dump(data))
            assert any(
                f": {with_typo}: unknown field; did you mean '{path[-1]}'?" in line for line in error.problems
            ), error.problems
        else:
            raise AssertionError(f"a typo in {path} was accepted")


# ------------------------------------------------------------- 3. valid manifests round-trip

DNS_LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
LABEL_VALUE = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?", fullmatch=True)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
    lambda n: not n.startswith("RUNNER_")
)
ENV_VALUE = st.one_of(TEXT, st.integers(), st.booleans(), st.floats(allow_nan=True))
ZONES = st.sampled_from(["UTC", "Asia/Seoul", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
CRONS = st.sampled_from(["0 2 * * *", "*/15 * * * *", "@daily", "@hourly", "0 9 * * MON-FRI", "5 4 1 1,7 *"])


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "command": draw(st.lists(TEXT, min_size=1, max_size=4).filter(lambda c: c[0].strip()))
    }
    if draw(st.booleans()):
        spec["image"] = {
            "base": draw(st.sampled_from(["tensorflow/tensorflow:2.21.0-gpu", "localhost:5000/tf:latest"])),
            "requirements": draw(st.one_of(st.just("requirements.txt"), st.lists(DNS_LABEL, max_size=3))),
            "apt": draw(st.lists(DNS_LABEL, max_size=2)),
        }
    if draw(st.booleans()):
        spec["env"] = draw(st.dictionaries(ENV_NAME, ENV_VALUE, max_size=4))
    if draw(st.booleans()):
        spec["resources"] = draw_resources(draw)
    if draw(st.booleans()):
        names = draw(st.lists(DNS_LABEL, max_size=3, unique_by=lambda n: n.replace("-", "_")))
        spec["inputs"] = [{"name": n, "source": f"s3://bucket/{n}/", "path": f"/in/{n}"} for n in names]
    if draw(st.booleans()):
        spec["outputs"] = {"path": draw(st.sampled_from(["/outputs", "/work/out", "/models/"]))}
    if draw(st.booleans()):
        spec["retries"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        seconds = draw(st.integers(1, 30 * 86400))
        spec["timeout"] = draw(st.sampled_from([format_duration(seconds), seconds]))
    if draw(st.booleans()):
        spec["schedule"] = {
            "cron": draw(CRONS),
            "timeZone": draw(ZONES),
            "concurrency": draw(st.sampled_from(["Forbid", "Replace", "Allow"])),
            "suspend": draw(st.booleans()),
        }
    if draw(st.booleans()):
        spec["kubernetes"] = {
            "namespace": draw(DNS_LABEL),
            "queue": draw(DNS_LABEL),
            "priorityClass": draw(DNS_LABEL),
        }
    return {"apiVersion": "runner/v1", "kind": "Job", "metadata": draw_metadata(draw), "spec": spec}


def draw_resources(draw: st.DrawFn) -> dict[str, Any]:
    gpu = draw(st.integers(0, 64))
    resources: dict[str, Any] = {"gpu": gpu}
    if gpu and draw(st.booleans()):
        resources["gpuType"] = draw(st.sampled_from(["H100", "A100", "NVIDIA-H100-80GB-HBM3"]))
    millicores = draw(st.integers(1, 1024 * 1000))
    resources["cpu"] = draw(st.sampled_from([format_cpu(millicores), millicores / 1000]))
    size = draw(st.integers(1, 1024 * 2**40))
    resources["memory"] = draw(st.sampled_from([format_memory(size), size]))
    return resources


def draw_metadata(draw: st.DrawFn) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": draw(DNS_LABEL)}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(DNS_LABEL, LABEL_VALUE, max_size=3))
    return metadata


@FUZZ
@given(valid_manifests())
def test_valid_manifests_round_trip(data: dict[str, Any]) -> None:
    try:
        manifest = parse_manifest(dump(data), NAME)[0]
    except ManifestError as error:  # pragma: no cover - a failure here is a bug in the model or the strategy
        raise AssertionError("\n".join(error.problems)) from None
    assert_round_trips(manifest)
