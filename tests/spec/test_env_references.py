"""spec.env references (fromEnv, fromFile, secretKeyRef), NUL bytes in commands and env, and
spec.resources.pids: what the model accepts, and what it refuses with file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ManifestError
from runner.spec import load_manifest
from runner.spec.env import EnvFrom

HEAD = "apiVersion: runner/v1\nkind: Job\nmetadata: {name: refs}\nspec:\n  command: [python, t.py]\n"


def load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "job.yaml"
    path.write_text(HEAD + body)
    return load_manifest(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [problem.replace(f"{tmp_path}/", "") for problem in caught.value.problems]


def test_values_and_references_side_by_side(tmp_path: Path) -> None:
    body = (
        "  env:\n"
        "    LEVEL: 2\n"
        "    API_KEY: {fromEnv: MY_API_KEY}\n"
        "    TOKEN: {fromFile: ~/.secrets/token}\n"
        "    DB_PASSWORD: {secretKeyRef: {name: db-credentials, key: password}}\n"
    )
    spec = load(tmp_path, body).manifest.spec  # type: ignore[attr-defined]
    assert spec.env_values == {"LEVEL": "2"}
    references = spec.env_references
    assert {name: ref.kind for name, ref in references.items()} == {
        "API_KEY": "fromEnv",
        "TOKEN": "fromFile",
        "DB_PASSWORD": "secretKeyRef",
    }
    assert references["API_KEY"].local and not references["DB_PASSWORD"].local
    # the resolved manifest keeps the references as written, never a value
    resolved = load(tmp_path, body).manifest.resolved()  # type: ignore[attr-defined]
    assert resolved["spec"]["env"] == {
        "LEVEL": "2",
        "API_KEY": {"fromEnv": "MY_API_KEY"},
        "TOKEN": {"fromFile": "~/.secrets/token"},
        "DB_PASSWORD": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
    }


def test_a_reference_round_trips_through_the_resolved_manifest(tmp_path: Path) -> None:
    loaded = load(tmp_path, "  env: {A: {fromEnv: X}}\n")
    again = type(loaded.manifest).model_validate(loaded.manifest.resolved())  # type: ignore[attr-defined]
    assert again == loaded.manifest  # type: ignore[attr-defined]
    assert isinstance(again.spec.env["A"], EnvFrom)


def test_bad_references_are_refused_where_they_are_written(tmp_path: Path) -> None:
    text = HEAD + (
        "  env:\n"
        "    A: {fromFile: relative/token}\n"
        "    B: {fromEnv: X, fromFile: /x}\n"
        "    C: {}\n"
        "    D: {fromEnv: 'NOT-A-NAME'}\n"
        "    E: {secretKeyRef: {name: Upper, key: 'a/b'}}\n"
        "    F: {fromVault: x}\n"
    )
    assert problems(tmp_path, text) == [
        "job.yaml:7:19: spec.env.A.fromFile: fromFile is an absolute path on this machine (or ~/...), like "
        "~/.secrets/api-key, got 'relative/token'",
        "job.yaml:8:5: spec.env.B: an env reference has exactly one of fromEnv (a variable of the submitting "
        "environment), fromFile (a file on this machine) or secretKeyRef (a Kubernetes Secret's key); "
        "got fromEnv and fromFile",
        "job.yaml:9:5: spec.env.C: an env reference has exactly one of fromEnv (a variable of the submitting "
        "environment), fromFile (a file on this machine) or secretKeyRef (a Kubernetes Secret's key)",
        "job.yaml:10:18: spec.env.D.fromEnv: fromEnv names a variable: letters, digits and '_', not starting "
        "with a digit, got 'NOT-A-NAME'",
        "job.yaml:11:30: spec.env.E.secretKeyRef.name: Secret name 'Upper' must be lower-case letters, "
        "digits, '-' and '.', starting and ending with a letter or digit (Kubernetes DNS-1123 subdomain)",
        "job.yaml:11:42: spec.env.E.secretKeyRef.key: a Secret's key is letters, digits, '-', '_' or '.', "
        "got 'a/b'",
        "job.yaml:12:9: spec.env.F.fromVault: unknown field",
    ]


def test_nul_bytes_in_the_command_or_env_are_refused_at_validation(tmp_path: Path) -> None:
    text = (
        "apiVersion: runner/v1\nkind: Job\nmetadata: {name: nul}\nspec:\n"
        '  command: [echo, "a\\0b"]\n'
        '  env: {A: "x\\0y"}\n'
    )
    assert problems(tmp_path, text) == [
        "job.yaml:5:19: spec.command[1]: contains a NUL character (\\0), which no command argument or "
        "environment variable can hold",
        "job.yaml:6:12: spec.env.A: contains a NUL character (\\0), which no command argument or environment "
        "variable can hold",
    ]


def test_pids_is_an_integer_within_bounds(tmp_path: Path) -> None:
    assert load(tmp_path, "  resources: {pids: 512}\n").manifest.spec.resources.pids == 512  # type: ignore[attr-defined]
    assert load(tmp_path, "").manifest.spec.resources.pids is None  # type: ignore[attr-defined]
    for bad, message in [
        ("4", "spec.resources.pids: expected at least 16, got 4"),
        ("'1000'", "spec.resources.pids: expected an integer, got '1000'"),
        ("5000000", "spec.resources.pids: expected at most 4194304, got 5000000"),
    ]:
        found = problems(tmp_path, HEAD + f"  resources: {{pids: {bad}}}\n")
        assert len(found) == 1 and found[0].endswith(message), found


def test_a_lone_surrogate_escape_is_refused_like_a_nul(tmp_path: Path) -> None:
    text = (
        "apiVersion: runner/v1\nkind: Job\nmetadata: {name: s}\nspec:\n" + '  command: [echo, "a\\uDCD4b"]\n'
    )
    assert problems(tmp_path, text) == [
        "job.yaml:5:19: spec.command[1]: contains '\\udcd4', half of a UTF-16 surrogate pair, "
        "which is no character"
    ]
