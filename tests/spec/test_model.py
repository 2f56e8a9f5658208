"""Tests for runner.spec.model: the rules of a v1 manifest and its defaults, through parse_manifest.

Each rule is checked for what it accepts and, word for word, for what it says when it refuses.
"""

# ruff: noqa: E501 - expected messages are written out whole, one per line, as users see them

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runner.errors import ManifestError
from runner.render import resolved_json, resolved_yaml
from runner.spec import JobManifest, parse_manifest
from runner.spec.model import DEFAULT_BASE_IMAGE, MAX_NAME_LENGTH, RUN_SUFFIX_LENGTH, Input
from tests.spec.samples import VALID

MINIMAL = "apiVersion: runner/v1\nkind: Job\nmetadata: {name: tiny}\nspec: {command: [python, t.py]}\n"


def manifest_with(*lines: str, metadata: str = "{name: x}") -> str:
    """A manifest with command: [a] and the given lines under spec (line 6 onwards)."""
    return f"apiVersion: runner/v1\nkind: Job\nmetadata: {metadata}\nspec:\n  command: [a]\n" + "".join(
        f"  {line}\n" for line in lines
    )


def parse(text: str) -> JobManifest:
    return parse_manifest(text, "job.yaml")[0]


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "job.yaml")
    return info.value.problems


def problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ defaults


def test_defaults_of_a_minimal_manifest() -> None:
    assert parse(MINIMAL).resolved() == {
        "apiVersion": "runner/v1",
        "kind": "Job",
        "metadata": {"name": "tiny", "labels": {}, "annotations": {}},
        "spec": {
            "image": {"base": "tensorflow/tensorflow:2.21.0-gpu", "apt": [], "context": "."},
            "command": ["python", "t.py"],
            "env": {},
            "resources": {"gpu": 0},
            "inputs": [],
            "outputs": {"path": "/outputs"},
            "retries": 0,
            "kubernetes": {},
        },
    }
    assert DEFAULT_BASE_IMAGE == "tensorflow/tensorflow:2.21.0-gpu"


def test_resolved_example_has_canonical_quantities_and_every_default() -> None:
    assert parse(VALID).resolved() == {
        "apiVersion": "runner/v1",
        "kind": "Job",
        "metadata": {"name": "mnist", "labels": {"team": "vision"}, "annotations": {}},
        "spec": {
            "image": {
                "base": "tensorflow/tensorflow:2.21.0-gpu",
                "requirements": "requirements.txt",
                "apt": [],
                "context": ".",
            },
            "command": ["python", "train.py", "--epochs", "5"],
            "env": {"TF_CPP_MIN_LOG_LEVEL": "1"},
            "resources": {"gpu": 1, "gpuType": "H100", "cpu": "4", "memory": "16Gi"},
            "inputs": [{"name": "data", "source": "s3://bucket/malaria/", "path": "/data"}],
            "outputs": {"path": "/outputs"},
            "retries": 2,
            "timeout": "2h",
            "schedule": {
                "cron": "0 2 * * *",
                "timeZone": "Asia/Seoul",
                "concurrency": "Forbid",
                "suspend": False,
                "startingDeadline": "1h",
            },
            "kubernetes": {"namespace": "ml", "queue": "team-a", "priorityClass": "batch-low"},
        },
    }


def test_schedule_defaults() -> None:
    schedule = parse(manifest_with("schedule: {cron: '@daily'}")).resolved()["spec"]["schedule"]
    assert schedule == {
        "cron": "@daily",
        "timeZone": "UTC",
        "concurrency": "Forbid",
        "suspend": False,
        "startingDeadline": "1h",
    }


def test_empty_values_take_their_defaults() -> None:
    text = manifest_with(
        "image:", "env:", "resources:", "inputs:", "outputs:", "retries:", "timeout:", "schedule:"
    )
    assert parse(text).resolved() == parse(manifest_with()).resolved()


def test_empty_required_values_are_reported() -> None:
    assert problems("apiVersion: runner/v1\nkind: Job\nmetadata: {name: }\nspec: {command: }\n") == [
        "job.yaml:3:17: metadata.name: expected text, got nothing",
        "job.yaml:4:16: spec.command: expected a list, got nothing",
    ]


def test_render_yaml_and_json() -> None:
    manifest = parse(VALID)
    text = resolved_yaml(manifest)
    assert "memory: 16Gi\n" in text
    assert "timeout: 2h\n" in text
    assert "    timeZone: Asia/Seoul\n" in text
    assert parse(text) == manifest
    assert '"cpu": "4"' in resolved_json(manifest)


def test_the_model_is_frozen() -> None:
    manifest = parse(VALID)
    with pytest.raises(ValidationError):
        manifest.spec.retries = 3  # type: ignore[misc]


def test_python_field_names_work_as_well_as_manifest_spelling() -> None:
    data: dict[str, Any] = {
        "api_version": "runner/v1",
        "kind": "Job",
        "metadata": {"name": "x"},
        "spec": {"command": ["a"], "resources": {"gpu": 1, "gpu_type": "A100"}},
    }
    assert JobManifest.model_validate(data).spec.resources.gpu_type == "A100"


# ----------------------------------------------------------- apiVersion and kind


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "apiVersion: runner/v1",
            "apiVersion: runner/v2",
            "job.yaml:1:13: apiVersion: expected 'runner/v1', got 'runner/v2'",
        ),
        (
            "apiVersion: runner/v1",
            "apiVersion: batch/v1",
            "job.yaml:1:13: apiVersion: expected 'runner/v1', got 'batch/v1'",
        ),
        ("apiVersion: runner/v1", "apiVersion: 1", "job.yaml:1:13: apiVersion: expected 'runner/v1', got 1"),
        (
            "apiVersion: runner/v1",
            "apiVersion: Runner/V1",
            "job.yaml:1:13: apiVersion: expected 'runner/v1', got 'Runner/V1'; did you mean 'runner/v1'?",
        ),
        ("kind: Job", "kind: Pod", "job.yaml:2:7: kind: expected 'Job', got 'Pod'"),
        ("kind: Job", "kind: job", "job.yaml:2:7: kind: expected 'Job', got 'job'; did you mean 'Job'?"),
        ("kind: Job", "kind: [Job]", "job.yaml:2:1: kind: expected 'Job', got a list"),
        (
            "apiVersion: runner/v1\n",
            "",
            "job.yaml:1:1: apiVersion: required field is missing; add apiVersion: runner/v1",
        ),
        ("kind: Job\n", "", "job.yaml:1:1: kind: required field is missing; add kind: Job"),
    ],
)
def test_api_version_and_kind(old: str, new: str, expected: str) -> None:
    assert problem(VALID.replace(old, new, 1)) == expected


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["a", "mnist", "train-2", "0day", "a" * MAX_NAME_LENGTH])
def test_valid_names(name: str) -> None:
    assert parse(manifest_with(metadata=f"{{name: '{name}'}}")).name == name


def test_names_leave_room_for_the_run_suffix() -> None:
    assert MAX_NAME_LENGTH == 52
    assert MAX_NAME_LENGTH + 1 + RUN_SUFFIX_LENGTH <= 63  # "<name>-<suffix>" is still a DNS label


@pytest.mark.parametrize("name", ["MNIST", "my_job", "my.job", "-job", "job-", "a b", "é", ""])
def test_names_must_be_dns_labels(name: str) -> None:
    assert problem(manifest_with(metadata=f"{{name: '{name}'}}")) == (
        f"job.yaml:3:18: metadata.name: name {name!r} must be lower-case letters, digits and '-', starting "
        "and ending with a letter or digit (Kubernetes DNS-1123 label)"
    )


def test_a_trailing_newline_is_not_part_of_a_valid_name() -> None:
    # Regular expressions ending in "$" match before a final newline; the model must not be fooled.
    text = manifest_with(
        'env: {"A\\n": x}',
        'kubernetes: {namespace: "ml\\n"}',
        metadata='{name: "mnist\\n", labels: {a: "b\\n"}}',
    )
    assert problems(text) == [
        "job.yaml:3:18: metadata.name: name 'mnist\\n' must be lower-case letters, digits and '-', starting and "
        "ending with a letter or digit (Kubernetes DNS-1123 label)",
        "job.yaml:3:41: metadata.labels.a: label value 'b\\n' must be at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit",
        "job.yaml:6:9: spec.env['A\\n']: a variable name must be letters, digits and '_', not starting with a digit",
        "job.yaml:7:27: spec.kubernetes.namespace: namespace 'ml\\n' must be lower-case letters, digits and '-', "
        "starting and ending with a letter or digit (Kubernetes DNS-1123 label)",
    ]


def test_a_name_of_53_characters_is_too_long() -> None:
    name = "a" * 53
    assert problem(manifest_with(metadata=f"{{name: {name}}}")) == (
        f"job.yaml:3:18: metadata.name: name '{name}' is 53 characters; at most 52 are allowed"
    )


def test_a_name_that_yaml_reads_as_a_number_must_be_quoted() -> None:
    assert problem(manifest_with(metadata="{name: 2024}")) == (
        'job.yaml:3:18: metadata.name: expected text, got 2024; quote it: "2024"'
    )
    assert problem(manifest_with(metadata="{name: 2024-01-01}")) == (
        'job.yaml:3:18: metadata.name: expected text, got 2024-01-01; quote it: "2024-01-01"'
    )
    assert parse(manifest_with(metadata="{name: '2024'}")).name == "2024"


# ------------------------------------------------------------------ labels


def test_valid_labels_and_annotations() -> None:
    metadata = (
        "{name: x, labels: {app.kubernetes.io/name: mnist, team: '', v: '1.0', a_b: A-b.c},"
        " annotations: {example.com/note: 'any text: even spaces', owner: me}}"
    )
    manifest = parse(manifest_with(metadata=metadata))
    assert manifest.metadata.labels == {
        "app.kubernetes.io/name": "mnist",
        "team": "",
        "v": "1.0",
        "a_b": "A-b.c",
    }
    assert manifest.metadata.annotations["example.com/note"] == "any text: even spaces"


def test_every_bad_label_is_reported_at_its_key_or_value() -> None:
    metadata = "{name: x, labels: {-a: b, c: 'd e', Example.com/f: g, h: " + "v" * 64 + "}}"
    assert problems(manifest_with(metadata=metadata)) == [
        "job.yaml:3:30: metadata.labels['-a']: a key must be 1-63 letters, digits, '-', '_' or '.' (after "
        "an optional prefix and '/'), starting and ending with a letter or digit",
        "job.yaml:3:40: metadata.labels.c: label value 'd e' must be at most 63 letters, digits, '-', '_' "
        "or '.', starting and ending with a letter or digit",
        "job.yaml:3:47: metadata.labels.Example.com/f: the key's prefix 'Example.com' must be a lower-case "
        "DNS subdomain like example.com",
        f"job.yaml:3:68: metadata.labels.h: label value '{'v' * 64}' must be at most 63 letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit",
    ]


def test_label_values_that_yaml_reads_as_numbers_must_be_quoted() -> None:
    assert problem(manifest_with(metadata="{name: x, labels: {v: 1}}")) == (
        'job.yaml:3:33: metadata.labels.v: expected text, got 1; quote it: "1"'
    )


def test_a_label_key_name_longer_than_63() -> None:
    key = "k" * 64
    assert problem(manifest_with(metadata=f"{{name: x, labels: {{{key}: v}}}}")) == (
        "job.yaml:3:30: metadata.labels[<a key of 64 characters>]: a key must be 1-63 letters, digits, '-', '_' or "
        "'.' (after an optional prefix and '/'), starting and ending with a letter or digit"
    )


def test_annotation_keys_are_checked() -> None:
    assert problem(manifest_with(metadata="{name: x, annotations: {'a b': c}}")) == (
        "job.yaml:3:35: metadata.annotations['a b']: a key must be 1-63 letters, digits, '-', '_' or '.' "
        "(after an optional prefix and '/'), starting and ending with a letter or digit"
    )


# ------------------------------------------------------------------ command


def test_command_items_that_yaml_reads_as_other_types_keep_their_text() -> None:
    text = manifest_with().replace("[a]", "[python, 1, 2.50, true, on, 0o17, 1.10, 2024-01-01]")
    assert parse(text).spec.command == ["python", "1", "2.50", "true", "on", "0o17", "1.10", "2024-01-01"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("[]", "job.yaml:5:3: spec.command: expected at least 1 item, got an empty list"),
        (
            "['', x]",
            "job.yaml:5:3: spec.command: the first item of command is the program to run and cannot be empty",
        ),
        (
            "[' ']",
            "job.yaml:5:3: spec.command: the first item of command is the program to run and cannot be empty",
        ),
        ("python train.py", "job.yaml:5:12: spec.command: expected a list, got 'python train.py'"),
        ("[python, ~]", "job.yaml:5:21: spec.command[1]: expected text, got nothing"),
        ("[python, {a: 1}]", "job.yaml:5:21: spec.command[1]: expected text, got a mapping"),
    ],
)
def test_command_is_a_non_empty_list(command: str, expected: str) -> None:
    assert problem(manifest_with().replace("[a]", command)) == expected


def test_empty_arguments_after_the_program_are_fine() -> None:
    assert parse(manifest_with().replace("[a]", "[a, '']")).spec.command == ["a", ""]


# ------------------------------------------------------------------ env


def test_env_values_from_yaml_numbers_and_booleans_become_strings() -> None:
    text = manifest_with(
        "env: {A: 1, B: true, C: 1.10, D: yes, E: 0x1F, F: 2024-01-01, G: '1', H: -0.5, I: False}"
    )
    assert parse(text).spec.env == {
        "A": "1",
        "B": "true",
        "C": "1.10",
        "D": "yes",
        "E": "0x1F",
        "F": "2024-01-01",
        "G": "1",
        "H": "-0.5",
        "I": "False",
    }


def test_env_values_from_python_numbers_and_booleans_become_strings() -> None:
    data: dict[str, Any] = {
        "apiVersion": "runner/v1",
        "kind": "Job",
        "metadata": {"name": "x"},
        "spec": {"command": ["a", 1], "env": {"A": 1, "B": True, "C": False, "D": 2.5}},
    }
    spec = JobManifest.model_validate(data).spec
    assert spec.env == {"A": "1", "B": "true", "C": "false", "D": "2.5"}
    assert spec.command == ["a", "1"]


def test_bad_env_names_and_values() -> None:
    text = manifest_with("env: {RUNNER_X: a, 1A: b, A-B: c, N: ~, M: [1], runner_ok: d}")
    assert problems(text) == [
        "job.yaml:6:9: spec.env.RUNNER_X: names starting with RUNNER_ are reserved for the runner; rename the "
        "variable",
        "job.yaml:6:22: spec.env.1A: a variable name must be letters, digits and '_', not starting with a digit",
        "job.yaml:6:29: spec.env.A-B: a variable name must be letters, digits and '_', not starting with a digit",
        "job.yaml:6:40: spec.env.N: expected text, got nothing",
        "job.yaml:6:43: spec.env.M: expected text, got a list",
    ]


def test_env_must_be_a_mapping() -> None:
    assert problem(manifest_with("env: [A=1]")) == "job.yaml:6:3: spec.env: expected a mapping, got a list"


# ------------------------------------------------------------------ resources


@pytest.mark.parametrize(
    ("cpu", "millicores", "rendered"),
    [
        ("4", 4000, "4"),
        ("0.5", 500, "500m"),
        ("'500m'", 500, "500m"),
        ("'2'", 2000, "2"),
        ("1.5", 1500, "1500m"),
    ],
)
def test_cpu_quantities(cpu: str, millicores: int, rendered: str) -> None:
    manifest = parse(manifest_with(f"resources: {{cpu: {cpu}}}"))
    assert manifest.spec.resources.cpu == millicores
    assert manifest.resolved()["spec"]["resources"]["cpu"] == rendered


@pytest.mark.parametrize(
    ("memory", "size", "rendered"),
    [
        ("16Gi", 16 * 2**30, "16Gi"),
        ("512Mi", 512 * 2**20, "512Mi"),
        ("1.5Gi", 1536 * 2**20, "1536Mi"),
        ("2G", 2 * 10**9, "1953125Ki"),
        ("1073741824", 2**30, "1Gi"),
    ],
)
def test_memory_quantities(memory: str, size: int, rendered: str) -> None:
    manifest = parse(manifest_with(f"resources: {{memory: {memory}}}"))
    assert manifest.spec.resources.memory == size
    assert manifest.resolved()["spec"]["resources"]["memory"] == rendered


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            "{cpu: 4x}",
            "job.yaml:6:20: spec.resources.cpu: expected a CPU quantity like 2, 0.5 or 500m, got '4x'",
        ),
        ("{cpu: 0}", "job.yaml:6:20: spec.resources.cpu: expected a CPU quantity greater than 0, got 0"),
        ("{cpu: true}", "job.yaml:6:20: spec.resources.cpu: expected a quantity, got true"),
        (
            "{memory: 16GB}",
            "job.yaml:6:23: spec.resources.memory: expected a memory quantity like 512Mi, 16Gi or 1073741824, got "
            "'16GB'; did you mean '16Gi'?",
        ),
        ("{gpu: 65}", "job.yaml:6:20: spec.resources.gpu: expected at most 64, got 65"),
        ("{gpu: -1}", "job.yaml:6:20: spec.resources.gpu: expected at least 0, got -1"),
        ("{gpu: two}", "job.yaml:6:20: spec.resources.gpu: expected an integer, got 'two'"),
        ("{gpu: true}", "job.yaml:6:20: spec.resources.gpu: expected an integer, got true"),
        ("{gpu: 1.5}", "job.yaml:6:20: spec.resources.gpu: expected an integer, got 1.5"),
        ("{gpu: '1'}", "job.yaml:6:20: spec.resources.gpu: expected an integer, got '1'"),
        (
            "{gpuType: H100}",
            "job.yaml:6:24: spec.resources.gpuType: gpuType 'H100' is set but gpu is 0; ask for at least one GPU",
        ),
        (
            "{gpu: 0, gpuType: H100}",
            "job.yaml:6:32: spec.resources.gpuType: gpuType 'H100' is set but gpu is 0; ask for at least one GPU",
        ),
        (
            "{gpu: 1, gpuType: NVIDIA A100}",
            "job.yaml:6:32: spec.resources.gpuType: expected a GPU model like H100 or NVIDIA-A100-SXM4-40GB "
            "(letters, digits, '-', '_' or '.'), got 'NVIDIA A100'",
        ),
        ("resources", "job.yaml:6:14: spec.resources: expected a mapping, got 'resources'"),
    ],
)
def test_bad_resources(resources: str, expected: str) -> None:
    assert problem(manifest_with(f"resources: {resources}")) == expected


def test_gpu_type_with_gpus() -> None:
    resources = parse(manifest_with("resources: {gpu: 8, gpuType: NVIDIA-H100-80GB-HBM3}")).spec.resources
    assert (resources.gpu, resources.gpu_type) == (8, "NVIDIA-H100-80GB-HBM3")


# ------------------------------------------------------------------ inputs and outputs


def test_inputs_and_their_variables() -> None:
    text = manifest_with("inputs: [{name: train-data, source: ./data, path: /data/train}]")
    (item,) = parse(text).spec.inputs
    assert item == Input(name="train-data", source="./data", path="/data/train")
    assert item.env_name == "RUNNER_INPUT_TRAIN_DATA"


def test_duplicate_input_names_are_refused() -> None:
    text = manifest_with("inputs: [{name: d, source: s, path: /d}, {name: d, source: t, path: /e}]")
    assert problem(text) == "job.yaml:6:3: spec.inputs: two inputs are named 'd'; input names must be unique"


def test_input_names_that_become_the_same_variable_are_refused() -> None:
    text = manifest_with("inputs: [{name: a-b, source: s, path: /a}, {name: a_b, source: t, path: /b}]")
    assert (
        problem(text)
        == "job.yaml:6:3: spec.inputs: inputs 'a-b' and 'a_b' both become RUNNER_INPUT_A_B; rename one"
    )


def test_overlapping_inputs_are_refused() -> None:
    text = manifest_with("inputs: [{name: d, source: s, path: /d}, {name: e, source: t, path: /d/sub}]")
    assert problem(text) == "job.yaml:6:3: spec.inputs: inputs 'd' (/d) and 'e' (/d/sub) overlap"


def test_an_input_inside_the_outputs_is_refused() -> None:
    text = manifest_with("inputs: [{name: d, source: s, path: /outputs/d}]")
    assert problem(text) == (
        "job.yaml:4:1: spec: input 'd' at /outputs/d overlaps the outputs path /outputs; keep inputs and "
        "outputs apart"
    )
    # /outputs-old is not inside /outputs
    assert (
        parse(manifest_with("inputs: [{name: d, source: s, path: /outputs-old}]")).spec.inputs[0].path
        == "/outputs-old"
    )


@pytest.mark.parametrize(
    ("written", "path"),
    [
        ("data", "data"),
        ("./data", "./data"),
        ("/", "/"),
        ("//", "//"),
        ("/data/../etc", "/data/../etc"),
        ("/..", "/.."),
        ('"/a\\tb"', "/a\tb"),
        ('"/a\\nb"', "/a\nb"),
        ("''", ""),
    ],
)
def test_container_paths_must_be_absolute(written: str, path: str) -> None:
    assert problem(manifest_with(f"outputs: {{path: {written}}}")) == (
        "job.yaml:6:19: spec.outputs.path: expected an absolute path inside the container like /outputs, got "
        f"{path!r}"
    )


def test_input_problems_are_all_reported() -> None:
    text = manifest_with("inputs: [{name: Data, source: '', path: relative}]")
    assert problems(text) == [
        "job.yaml:6:19: spec.inputs[0].name: input name 'Data' must be lower-case letters, digits, '-' or '_'",
        "job.yaml:6:33: spec.inputs[0].source: expected where the data comes from, like s3://bucket/data/ or "
        "./data",
        "job.yaml:6:43: spec.inputs[0].path: expected an absolute path inside the container like /outputs, got "
        "'relative'",
    ]


# ------------------------------------------------------------------ retries and timeout


@pytest.mark.parametrize("retries", [0, 1, 20])
def test_retries_within_bounds(retries: int) -> None:
    assert parse(manifest_with(f"retries: {retries}")).spec.retries == retries


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        ("-1", "expected at least 0, got -1"),
        ("21", "expected at most 20, got 21"),
        ("two", "expected an integer, got 'two'"),
        ("'3'", "expected an integer, got '3'"),
        ("2.5", "expected an integer, got 2.5"),
        ("true", "expected an integer, got true"),
    ],
)
def test_retries_out_of_bounds_or_of_the_wrong_type(retries: str, expected: str) -> None:
    assert problem(manifest_with(f"retries: {retries}")) == f"job.yaml:6:12: spec.retries: {expected}"


def test_a_problem_with_a_whole_list_or_mapping_points_at_its_key() -> None:
    assert (
        problem(manifest_with("retries: [1]"))
        == "job.yaml:6:3: spec.retries: expected an integer, got a list"
    )
    assert problem(manifest_with("retries:", "  - 1")) == (
        "job.yaml:6:3: spec.retries: expected an integer, got a list"
    )


@pytest.mark.parametrize(
    ("timeout", "seconds", "rendered"),
    [
        ("2h", 7200, "2h"),
        ("90m", 5400, "1h30m"),
        ("90", 90, "1m30s"),
        ("1d", 86400, "1d"),
        ("'30s'", 30, "30s"),
    ],
)
def test_timeouts(timeout: str, seconds: int, rendered: str) -> None:
    manifest = parse(manifest_with(f"timeout: {timeout}"))
    assert manifest.spec.timeout == seconds
    assert manifest.resolved()["spec"]["timeout"] == rendered


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("2 hours", "expected a duration like 30s, 90m, 2h, 1d or 1h30m, got '2 hours'; did you mean '2h'?"),
        ("0", "expected a duration greater than 0, got 0"),
        ("31d", "expected a duration of at most 30d, got '31d'"),
        ("yes", "expected a quantity, got true"),
    ],
)
def test_bad_timeouts(timeout: str, expected: str) -> None:
    assert problem(manifest_with(f"timeout: {timeout}")) == f"job.yaml:6:12: spec.timeout: {expected}"


# ------------------------------------------------------------------ schedule


@pytest.mark.parametrize("cron", ["0 2 * * *", "*/15 * * * *", "@daily", "0 9 * * MON-FRI", "30 3 1 */2 *"])
def test_valid_cron_expressions(cron: str) -> None:
    schedule = parse(manifest_with(f"schedule: {{cron: '{cron}'}}")).spec.schedule
    assert schedule is not None
    assert schedule.cron == cron


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 25 * * *", "hour field '25': 25 is out of range 0-23"),
        (
            "* * * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6; a seconds field is not supported",
        ),
        ("@every 1h", "'@every' intervals are not supported, got '@every 1h'; use a 5-field cron expression"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
    ],
)
def test_bad_cron_expressions(cron: str, expected: str) -> None:
    assert (
        problem(manifest_with(f"schedule: {{cron: '{cron}'}}"))
        == f"job.yaml:6:20: spec.schedule.cron: {expected}"
    )


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Asia/Seol", "unknown time zone 'Asia/Seol'; did you mean 'Asia/Seoul'?"),
        ("asia/seoul", "unknown time zone 'asia/seoul'; did you mean 'Asia/Seoul'?"),
        ("Europe/Berln", "unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?"),
        (
            "Local",
            "expected an IANA time zone name like 'Europe/Berlin', not 'Local': the zone must be explicit",
        ),
        (
            "/etc/localtime",
            "expected an IANA time zone name like 'Europe/Berlin', not a file path, got '/etc/localtime'",
        ),
    ],
)
def test_time_zones(zone: str, expected: str) -> None:
    text = manifest_with(f"schedule: {{cron: '@daily', timeZone: '{zone}'}}")
    assert problem(text) == f"job.yaml:6:40: spec.schedule.timeZone: {expected}"


def test_schedule_options() -> None:
    text = manifest_with(
        "schedule: {cron: '@hourly', timeZone: Europe/Berlin, concurrency: Replace, suspend: true}"
    )
    schedule = parse(text).spec.schedule
    assert schedule is not None
    assert (schedule.time_zone, schedule.concurrency, schedule.suspend) == ("Europe/Berlin", "Replace", True)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (
            "concurrency: forbid",
            "job.yaml:6:43: spec.schedule.concurrency: expected 'Forbid', 'Replace' or 'Allow', got 'forbid'; "
            "did you mean 'Forbid'?",
        ),
        (
            "concurrency: Never",
            "job.yaml:6:43: spec.schedule.concurrency: expected 'Forbid', 'Replace' or 'Allow', got 'Never'",
        ),
        ("suspend: 'yes'", "job.yaml:6:39: spec.schedule.suspend: expected true or false, got 'yes'"),
        ("suspend: 1", "job.yaml:6:39: spec.schedule.suspend: expected true or false, got 1"),
    ],
)
def test_bad_schedule_options(option: str, expected: str) -> None:
    assert problem(manifest_with(f"schedule: {{cron: '@daily', {option}}}")) == expected


def test_a_schedule_needs_a_cron_expression() -> None:
    assert problem(manifest_with("schedule: {timeZone: UTC}")) == (
        "job.yaml:6:3: spec.schedule.cron: required field is missing"
    )


# ------------------------------------------------------------------ kubernetes


def test_kubernetes_options() -> None:
    text = manifest_with(
        "kubernetes: {namespace: ml, queue: team-a, priorityClass: batch.low, serviceAccount: trainer}"
    )
    options = parse(text).spec.kubernetes
    assert (options.namespace, options.queue, options.priority_class, options.service_account) == (
        "ml",
        "team-a",
        "batch.low",
        "trainer",
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (
            "namespace: ML",
            "job.yaml:6:27: spec.kubernetes.namespace: namespace 'ML' must be lower-case letters, digits and "
            "'-', starting and ending with a letter or digit (Kubernetes DNS-1123 label)",
        ),
        (
            "namespace: a.b",
            "job.yaml:6:27: spec.kubernetes.namespace: namespace 'a.b' must be lower-case letters, digits and "
            "'-', starting and ending with a letter or digit (Kubernetes DNS-1123 label)",
        ),
        (
            "namespace: " + "n" * 64,
            f"job.yaml:6:27: spec.kubernetes.namespace: namespace '{'n' * 64}' is 64 characters; at most 63 "
            "are allowed",
        ),
        (
            "queue: Team_A",
            "job.yaml:6:23: spec.kubernetes.queue: queue 'Team_A' must be lower-case letters, digits, '-' and "
            "'.', starting and ending with a letter or digit (Kubernetes DNS-1123 subdomain)",
        ),
        (
            "priorityClass: High",
            "job.yaml:6:31: spec.kubernetes.priorityClass: name 'High' must be lower-case letters, digits, '-' "
            "and '.', starting and ending with a letter or digit (Kubernetes DNS-1123 subdomain)",
        ),
    ],
)
def test_bad_kubernetes_options(option: str, expected: str) -> None:
    assert problem(manifest_with(f"kubernetes: {{{option}}}")) == expected


def test_a_63_character_namespace_is_fine() -> None:
    assert (
        parse(manifest_with("kubernetes: {namespace: " + "n" * 63 + "}")).spec.kubernetes.namespace
        == "n" * 63
    )


# ------------------------------------------------------------------ image


def test_image_requirements_as_a_list() -> None:
    image = parse(manifest_with("image: {requirements: [numpy, pandas==2.2], apt: [curl]}")).spec.image
    assert image.requirements == ["numpy", "pandas==2.2"]
    assert image.apt == ["curl"]
    assert image.base == DEFAULT_BASE_IMAGE


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("{requirements: 5}", "job.yaml:6:25: spec.image.requirements: expected text or a list, got 5"),
        (
            "{requirements: [a, 5]}",
            'job.yaml:6:29: spec.image.requirements[1]: expected text, got 5; quote it: "5"',
        ),
        (
            "{base: 'tf 2'}",
            "job.yaml:6:17: spec.image.base: expected an image reference like tensorflow/tensorflow:2.21.0-gpu, "
            "got 'tf 2'",
        ),
        ("{apt: curl}", "job.yaml:6:16: spec.image.apt: expected a list, got 'curl'"),
        ("tensorflow", "job.yaml:6:10: spec.image: expected a mapping, got 'tensorflow'"),
    ],
)
def test_bad_images(image: str, expected: str) -> None:
    assert problem(manifest_with(f"image: {image}")) == expected


# ------------------------------------------------------------------ whole sections


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: runner/v1\nkind: Job\nmetadata: x\nspec: 5\n",
            [
                "job.yaml:3:11: metadata: expected a mapping, got 'x'",
                "job.yaml:4:7: spec: expected a mapping, got 5",
            ],
        ),
        (
            "apiVersion: runner/v1\nkind: Job\nmetadata:\nspec:\n",
            [
                "job.yaml:3:10: metadata: expected a mapping, got nothing",
                "job.yaml:4:6: spec: expected a mapping, got nothing",
            ],
        ),
    ],
)
def test_sections_of_the_wrong_type(text: str, expected: list[str]) -> None:
    assert problems(text) == expected
