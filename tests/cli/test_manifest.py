"""`runner validate` and `runner render`: what users see for good and bad manifests, through click.

Every bad input ends with exit code 2 and a message on stderr, never a traceback.
"""

# ruff: noqa: E501 - expected messages are written out whole, one per line, as users see them

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from runner.cli.main import cli
from tests.spec.samples import VALID

MINIMAL = "apiVersion: runner/v1\nkind: Job\nmetadata: {name: tiny}\nspec: {command: [python, t.py]}\n"

BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BILLION_LAUGHS


Invoke = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Invoke the CLI with RUNNER_HOME in a temporary directory; returns the click Result."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RUNNER_HOME", str(home))
    monkeypatch.delenv("RUNNER_DEBUG", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------ validate


def test_validate_a_valid_manifest(run: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, "job.yaml", VALID)
    write(tmp_path, "requirements.txt", "")  # VALID names it: validate warns of a missing one
    result = run("validate", str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: valid (job mnist)\n"
    assert result.stderr == ""


def test_validate_several_valid_manifests(run: Invoke, tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", VALID)
    second = write(tmp_path, "b.yaml", MINIMAL)
    result = run("validate", str(first), str(second))
    assert result.exit_code == 0
    assert result.stdout == f"{first}: valid (job mnist)\n{second}: valid (job tiny)\n"


def test_validate_reports_every_problem_and_checks_the_other_files(run: Invoke, tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", VALID)
    write(tmp_path, "requirements.txt", "")  # VALID names it: validate warns of a missing one
    bad = write(
        tmp_path,
        "bad.yaml",
        VALID.replace("retries: 2", "retries: two")
        .replace("  resources:", "  resouces:")
        .replace("2h", "2 hours"),
    )
    missing = tmp_path / "missing.yaml"
    last = write(tmp_path, "last.yaml", MINIMAL)
    result = run("validate", str(good), str(bad), str(missing), str(last))
    assert result.exit_code == 2
    assert result.stdout == f"{good}: valid (job mnist)\n{last}: valid (job tiny)\n"
    assert result.stderr == (
        f"{bad}:8:3: spec.resouces: unknown field; did you mean 'resources'?\n"
        f"{bad}:11:12: spec.retries: expected an integer, got 'two'\n"
        f"{bad}:12:12: spec.timeout: expected a duration like 30s, 90m, 2h, 1d or 1h30m, got '2 hours'; "
        "did you mean '2h'?\n"
        f"{missing}: no such file\n"
        "hint: check the path; manifests are YAML files such as job.yaml\n"
        "2 of 4 manifest(s) invalid\n"
    )
    assert_no_traceback(result)


def test_validate_needs_a_file(run: Invoke) -> None:
    result = run("validate")
    assert result.exit_code == 2
    assert "Missing argument 'FILES...'" in result.stderr
    assert_no_traceback(result)


# The bad inputs of the issue, each with the exact message `runner validate` prints for it.
BAD_INPUTS: list[tuple[str, str | bytes, str]] = [
    (
        "syntax",
        "a: b: c\n",
        "{path}:1:5: a ':' where no mapping can start: indent this line like the keys around it, or quote a "
        "value that contains ': '",
    ),
    (
        "wrong-type",
        VALID.replace("retries: 2", "retries: [2]"),
        "{path}:11:3: spec.retries: expected an integer, got a list",
    ),
    (
        "empty",
        "",
        "{path}:1:1: the file is empty; expected a manifest with apiVersion, kind, metadata and spec",
    ),
    (
        "only-comments",
        "# nothing\n",
        "{path}:1:1: the file is empty; expected a manifest with apiVersion, kind, metadata and spec",
    ),
    (
        "two-documents",
        VALID + "---\n" + MINIMAL,
        "{path}:16:1: expected one manifest, found a second YAML document; put each job in its own file",
    ),
    ("binary", bytes(range(256)), "{path}:1:1: not a text file (it contains NUL bytes)"),
    ("utf16", VALID.encode("utf-16"), "{path}:1:1: the file is UTF-16 text; save the manifest as UTF-8"),
    ("elf", b"\x7fELF\x02\x01\x01" + b"\x00" * 9, "{path}:1:8: not a text file (it contains NUL bytes)"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00", "{path}:3:1: not a text file (it contains NUL bytes)"),
    (
        "latin1",
        VALID.replace("team: vision", "team: caf\xe9").encode("latin-1"),
        "{path}:3:43: not a UTF-8 text file (byte 0xe9 at offset 74); save the manifest as UTF-8",
    ),
    (
        "nul",
        VALID.replace("kind: Job", "kind: Jo\x00b"),
        "{path}:2:9: not a text file (it contains NUL bytes)",
    ),
    ("duplicate", VALID + "kind: Job\n", "{path}:15:1: kind: duplicate key; it is already set on line 2"),
    (
        "list",
        "- apiVersion: runner/v1\n- kind: Job\n",
        "{path}:1:1: expected a mapping with apiVersion, kind, metadata and spec at the top, got a list",
    ),
    (
        "on-key",
        VALID.replace("  retries: 2\n", "  on: push\n"),
        "{path}:11:3: spec: key 'on' is read as true, not text; quote it: \"on\"",
    ),
    (
        "alias-bomb",
        BILLION_LAUGHS,
        "{path}:1:14: more than 100000 values, counting each use of an alias; a manifest has far fewer (is this an alias bomb?)",
    ),
    (
        "api-version",
        VALID.replace("runner/v1", "runner/v2"),
        "{path}:1:13: apiVersion: expected 'runner/v1', got 'runner/v2'",
    ),
    ("kind", VALID.replace("kind: Job", "kind: CronJob"), "{path}:2:7: kind: expected 'Job', got 'CronJob'"),
    (
        "time-zone",
        VALID.replace("Asia/Seoul", "Asia/Seol"),
        "{path}:13:43: spec.schedule.timeZone: unknown time zone 'Asia/Seol'; did you mean 'Asia/Seoul'?",
    ),
    (
        "cron",
        VALID.replace("0 2 * * *", "0 2 * *"),
        "{path}:13:20: spec.schedule.cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4",
    ),
    (
        "memory",
        VALID.replace("16Gi", "16GB"),
        "{path}:8:54: spec.resources.memory: expected a memory quantity like 512Mi, 16Gi or 1073741824, got '16GB'; did you mean '16Gi'?",
    ),
    (
        "name",
        VALID.replace("name: mnist", "name: " + "m" * 53),
        "{path}:3:18: metadata.name: name '" + "m" * 53 + "' is 53 characters; at most 52 are allowed",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_validate_bad_input(
    run: Invoke, tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, f"{name}.yaml", content)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == expected.format(path=path) + "\n1 of 1 manifest(s) invalid\n"
    assert_no_traceback(result)


def test_validate_a_ten_megabyte_file(run: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", b"a: " + b"x" * 10_000_000 + b"\n")
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"{path}: the file is 9.5 MiB; a manifest is at most 1 MiB\n1 of 1 manifest(s) invalid\n"
    )
    assert_no_traceback(result)


def test_validate_a_directory(run: Invoke, tmp_path: Path) -> None:
    result = run("validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"{tmp_path}: is a directory; expected a manifest file such as {tmp_path}/job.yaml\n"
        "1 of 1 manifest(s) invalid\n"
    )
    assert_no_traceback(result)


def test_validate_a_missing_file(run: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"{path}: no such file\nhint: check the path; manifests are YAML files such as job.yaml\n"
        "1 of 1 manifest(s) invalid\n"
    )


def test_validate_a_file_with_three_mistakes(run: Invoke, tmp_path: Path) -> None:
    text = (
        VALID.replace("name: mnist", "name: MNIST")
        .replace("TF_CPP_MIN_LOG_LEVEL", "RUNNER_LEVEL")
        .replace("path: /data", "path: data")
    )
    path = write(tmp_path, "job.yaml", text)
    result = run("validate", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"{path}:3:18: metadata.name: name 'MNIST' must be lower-case letters, digits and '-', starting and "
        "ending with a letter or digit (Kubernetes DNS-1123 label)",
        f"{path}:7:9: spec.env.RUNNER_LEVEL: names starting with RUNNER_ are reserved for the runner; rename the "
        "variable",
        f"{path}:9:61: spec.inputs[0].path: expected an absolute path inside the container like /outputs, got "
        "'data'",
        "1 of 1 manifest(s) invalid",
    ]


def test_normal_anchors_and_aliases_validate(run: Invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace("{command: [python, t.py]}", "{command: &c [python, t.py], env: {A: &v x, B: *v}}")
    result = run("validate", str(write(tmp_path, "job.yaml", text)))
    assert result.exit_code == 0
    assert result.stdout.endswith(": valid (job tiny)\n")


# ------------------------------------------------------------------ render


def test_render_fills_in_every_default(run: Invoke, tmp_path: Path) -> None:
    result = run("render", str(write(tmp_path, "job.yaml", MINIMAL)))
    assert result.exit_code == 0
    assert result.stdout == (
        "apiVersion: runner/v1\n"
        "kind: Job\n"
        "metadata:\n"
        "  name: tiny\n"
        "  labels: {}\n"
        "  annotations: {}\n"
        "spec:\n"
        "  image:\n"
        "    base: tensorflow/tensorflow:2.21.0-gpu\n"
        "    apt: []\n"
        "    context: .\n"
        "  command:\n"
        "  - python\n"
        "  - t.py\n"
        "  env: {}\n"
        "  resources:\n"
        "    gpu: 0\n"
        "  inputs: []\n"
        "  outputs:\n"
        "    path: /outputs\n"
        "  retries: 0\n"
        "  kubernetes: {}\n"
    )


def test_render_the_example_as_yaml(run: Invoke, tmp_path: Path) -> None:
    text = VALID.replace("memory: 16Gi", "memory: 17179869184").replace("timeout: 2h", "timeout: 120m")
    result = run("render", str(write(tmp_path, "job.yaml", text)))
    assert result.exit_code == 0
    rendered = yaml.safe_load(result.stdout)
    assert rendered["spec"]["resources"] == {"gpu": 1, "gpuType": "H100", "cpu": "4", "memory": "16Gi"}
    assert rendered["spec"]["timeout"] == "2h"
    assert rendered["spec"]["retries"] == 2
    assert rendered["spec"]["outputs"] == {"path": "/outputs"}
    assert rendered["spec"]["schedule"] == {
        "cron": "0 2 * * *",
        "timeZone": "Asia/Seoul",
        "concurrency": "Forbid",
        "suspend": False,
        "startingDeadline": "1h",
    }
    assert rendered["spec"]["image"]["base"] == "tensorflow/tensorflow:2.21.0-gpu"
    assert rendered["spec"]["env"] == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert "  memory: 16Gi\n" in result.stdout
    assert "  timeout: 2h\n" in result.stdout


def test_render_as_json(run: Invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "{command: [python, t.py]}", "{command: [a], resources: {cpu: 0.5, memory: 512Mi}}"
    )
    result = run("render", "-o", "json", str(write(tmp_path, "job.yaml", text)))
    assert result.exit_code == 0
    rendered = json.loads(result.stdout)
    assert rendered["spec"]["resources"] == {"gpu": 0, "cpu": "500m", "memory": "512Mi"}
    assert rendered["spec"]["retries"] == 0
    assert rendered["spec"]["outputs"]["path"] == "/outputs"
    assert result.stdout.endswith("}\n")


def test_render_schedule_defaults(run: Invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace("{command: [python, t.py]}", "{command: [a], schedule: {cron: '@daily'}}")
    result = run("render", "--output", "yaml", str(write(tmp_path, "job.yaml", text)))
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["spec"]["schedule"] == {
        "cron": "@daily",
        "timeZone": "UTC",
        "concurrency": "Forbid",
        "suspend": False,
        "startingDeadline": "1h",
    }


def test_rendered_output_validates_to_the_same_manifest(run: Invoke, tmp_path: Path) -> None:
    first = run("render", str(write(tmp_path, "job.yaml", VALID))).stdout
    second = run("render", str(write(tmp_path, "again.yaml", first))).stdout
    assert first == second


def test_render_an_invalid_manifest(run: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, "job.yaml", VALID.replace("  resources:", "  resouces:"))
    result = run("render", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{path}:8:3: spec.resouces: unknown field; did you mean 'resources'?\n"
    assert_no_traceback(result)


@pytest.mark.parametrize(("name", "content", "expected"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_render_bad_input(
    run: Invoke, tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, f"{name}.yaml", content)
    result = run("render", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == expected.format(path=path) + "\n"
    assert_no_traceback(result)


def test_render_a_missing_file_and_a_directory(run: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run("render", str(missing))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"{missing}: no such file\nhint: check the path; manifests are YAML files such as job.yaml\n"
    )
    result = run("render", str(tmp_path))
    assert result.exit_code == 2
    assert (
        result.stderr == f"{tmp_path}: is a directory; expected a manifest file such as {tmp_path}/job.yaml\n"
    )
    assert_no_traceback(result)


def test_render_refuses_an_unknown_format(run: Invoke, tmp_path: Path) -> None:
    result = run("render", "-o", "xml", str(write(tmp_path, "job.yaml", MINIMAL)))
    assert result.exit_code == 2
    assert "Invalid value for '-o' / '--output': 'xml' is not one of 'json', 'yaml'." in result.stderr
    assert_no_traceback(result)


def test_debug_shows_the_exception_instead(run: Invoke, tmp_path: Path) -> None:
    from runner.errors import ManifestError

    path = write(tmp_path, "job.yaml", "")
    with pytest.raises(ManifestError):
        run("--debug", "render", str(path))


def test_a_nul_byte_in_the_command_or_env_is_refused_by_validate(
    tmp_path: Path, runner: Callable[..., Any]
) -> None:
    """YAML's "\\0" escape makes a NUL no command line or environment can carry: refused before any run."""
    path = write(
        tmp_path,
        "job.yaml",
        'apiVersion: runner/v1\nkind: Job\nmetadata: {name: nul}\nspec:\n  command: [echo, "a\\0b"]\n  env: {A: "x\\0y"}\n',
    )
    result = runner("validate", str(path))
    assert result.code == 2, result.output
    assert (
        f"{path}:5:19: spec.command[1]: contains a NUL character (\\0), which no command argument or environment variable can hold"
        in result.stderr
    )
    assert f"{path}:6:12: spec.env.A: contains a NUL character (\\0)" in result.stderr
    assert "Traceback" not in result.output


SHADOW = (
    "root:$6$Zq1saltsalt$Xk9hashhashhashhashhashhashhashhashhashhashhashhashhash:19000:0:99999:7:::\n"
    "daemon:*:19000:0:99999:7:::\n"
    "alice:$6$abcdefgh$Secretsecretsecretsecretsecretsecretsecretsecretsecret:19500:0:99999:7:::\n"
)
TOKEN = "ghp_R3allySecretTokenValue1234567890abcdefABCDEF\n"


@pytest.mark.parametrize(
    ("content", "secrets"),
    [(SHADOW, ["$6$", "hashhash", "Secretsecret", "daemon:*"]), (TOKEN, ["ghp_", "R3ally"])],
)
def test_a_file_that_is_no_manifest_is_never_echoed(
    tmp_path: Path, runner: Callable[..., Any], content: str, secrets: list[str]
) -> None:
    """A job.yaml linked to /etc/shadow or a token file: exit 2 with positions, none of its contents."""
    target = write(tmp_path, "private", content)
    link = tmp_path / "job.yaml"
    link.symlink_to(target)
    for command in (["validate", str(link)], ["render", str(link)], ["submit", str(link)]):
        result = runner(*command)
        assert result.code == 2, result.output
        assert f"{link}:1:1:" in result.stderr
        for secret in secrets:
            assert secret not in result.output, (command, result.output)
        assert "Traceback" not in result.output
