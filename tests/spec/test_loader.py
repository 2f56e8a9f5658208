"""Tests for runner.spec.loader: reading YAML with positions, and turning every problem into one line.

Every error is asserted word for word: the messages are the interface users see.
"""

# ruff: noqa: E501 - expected messages are written out whole, one per line, as users see them

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from runner.errors import ManifestError, UserError
from runner.spec import JobManifest, LoadedManifest, load_manifest, loader, parse_manifest
from runner.spec.loader import MAX_MANIFEST_BYTES, MAX_PROBLEMS
from runner.spec.yamlread import MAX_DEPTH, MAX_NODES
from tests.spec.samples import VALID

HEAD = "apiVersion: runner/v1\nkind: Job\nmetadata: {name: x}\n"


def problems(text: str | bytes, name: str = "job.yaml") -> list[str]:
    """The problems parse_manifest reports for text (which must be invalid)."""
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, name)
    assert info.value.message == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(text: str | bytes) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def spec(*lines: str) -> str:
    """A manifest whose spec holds command: [a] and the given lines (each indented under spec)."""
    return HEAD + "spec:\n  command: [a]\n" + "".join(f"  {line}\n" for line in lines)


# ------------------------------------------------------------------- valid input


def test_the_example_manifest_is_valid() -> None:
    manifest, text = parse_manifest(VALID, "job.yaml")
    assert text == VALID
    assert manifest.name == "mnist"
    assert manifest.spec.resources.cpu == 4000
    assert manifest.spec.resources.memory == 16 * 2**30
    assert manifest.spec.timeout == 7200
    assert manifest.spec.schedule is not None
    assert manifest.spec.schedule.time_zone == "Asia/Seoul"


def test_bytes_with_a_utf8_byte_order_mark_are_read() -> None:
    manifest, text = parse_manifest(b"\xef\xbb\xbf" + VALID.encode(), "job.yaml")
    assert manifest.name == "mnist"
    assert text == VALID


def test_load_manifest_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(VALID)
    loaded = load_manifest(path)
    assert isinstance(loaded, LoadedManifest)
    assert isinstance(loaded.manifest, JobManifest)
    assert loaded.text == VALID
    assert loaded.path == path.absolute()
    assert loaded.base_dir == tmp_path


def test_a_leading_and_a_trailing_document_separator_are_fine() -> None:
    assert parse_manifest("---\n" + VALID + "---\n")[0].name == "mnist"
    assert parse_manifest(VALID + "...\n")[0].name == "mnist"


def test_windows_line_endings() -> None:
    assert parse_manifest(VALID.replace("\n", "\r\n"))[0].name == "mnist"
    text = VALID.replace("retries: 2", "retries: x").replace("\n", "\r\n")
    assert only_problem(text) == "job.yaml:11:12: spec.retries: expected an integer, got 'x'"


def test_comments_and_block_style_work() -> None:
    text = """\
# a job
apiVersion: runner/v1   # the version
kind: Job
metadata:
  name: block
spec:
  command:
    - python
    - train.py
"""
    assert parse_manifest(text)[0].spec.command == ["python", "train.py"]


def test_anchors_and_aliases_work() -> None:
    text = HEAD + (
        "spec:\n"
        "  command: &cmd [python, train.py]\n"
        "  env: {A: &v shared, B: *v}\n"
        "  inputs:\n"
        "    - &first {name: a, source: s3://b/a, path: /in/a}\n"
        "    - {<<: *first, name: b, path: /in/b}\n"
    )
    manifest = parse_manifest(text)[0]
    assert manifest.spec.env == {"A": "shared", "B": "shared"}
    assert [(i.name, i.source, i.path) for i in manifest.spec.inputs] == [
        ("a", "s3://b/a", "/in/a"),
        ("b", "s3://b/a", "/in/b"),
    ]


def test_merge_keys_follow_yaml_precedence() -> None:
    # Keys written in the mapping win; among merged mappings the first wins.
    text = HEAD + (
        "spec:\n"
        "  command: [a]\n"
        "  inputs:\n"
        "    - &one {name: a, source: one, path: /a}\n"
        "    - &two {name: b, source: two, path: /b}\n"
        "    - {<<: [*one, *two], name: c, path: /c}\n"
    )
    third = parse_manifest(text)[0].spec.inputs[2]
    assert (third.name, third.source, third.path) == ("c", "one", "/c")


# --------------------------------------------------- positions, paths, all at once


def test_unknown_key_names_file_line_column_path_and_a_suggestion() -> None:
    text = VALID.replace("  resources:", "  resouces:")
    assert only_problem(text) == "job.yaml:8:3: spec.resouces: unknown field; did you mean 'resources'?"


def test_unknown_key_with_four_space_indentation() -> None:
    text = HEAD + "spec:\n    command: [a]\n    resouces: {gpu: 1}\n"
    assert only_problem(text) == "job.yaml:6:5: spec.resouces: unknown field; did you mean 'resources'?"


def test_unknown_key_without_a_close_match_lists_the_fields() -> None:
    assert only_problem(spec("colour: red")) == (
        "job.yaml:6:3: spec.colour: unknown field; expected one of: image, command, env, resources, workers, "
        "inputs, outputs, retries, timeout, schedule, retention, kubernetes, notify"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("resources: {gpus: 1}", "job.yaml:6:15: spec.resources.gpus: unknown field; did you mean 'gpu'?"),
        (
            "resources: {gpu: 1, gpu_typ: H100}",
            "job.yaml:6:23: spec.resources.gpu_typ: unknown field; did you mean 'gpuType'?",
        ),
        (
            "schedule: {cron: '@daily', timezone: UTC}",
            "job.yaml:6:30: spec.schedule.timezone: unknown field; did you mean 'timeZone'?",
        ),
        (
            "inputs: [{name: a, source: s, path: /a, mode: ro}]",
            "job.yaml:6:43: spec.inputs[0].mode: unknown field; expected one of: name, source, path",
        ),
        (
            "kubernetes: {namespce: ml}",
            "job.yaml:6:16: spec.kubernetes.namespce: unknown field; did you mean 'namespace'?",
        ),
    ],
)
def test_unknown_nested_keys(line: str, expected: str) -> None:
    assert only_problem(spec(line)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (spec("gpu: 1"), "job.yaml:6:3: spec.gpu: unknown field; gpu belongs under spec.resources"),
        (
            spec("timeZone: UTC"),
            "job.yaml:6:3: spec.timeZone: unknown field; timeZone belongs under spec.schedule",
        ),
        (
            HEAD.replace("{name: x}", "{name: x, namespace: ml}") + "spec: {command: [a]}\n",
            "job.yaml:3:21: metadata.namespace: unknown field; namespace belongs under spec.kubernetes",
        ),
        (
            spec("path: /out"),
            "job.yaml:6:3: spec.path: unknown field; path belongs under each item of spec.inputs or spec.outputs",
        ),
        (spec("Retries: 1"), "job.yaml:6:3: spec.Retries: unknown field; did you mean 'retries'?"),
        (
            HEAD + "spec: {command: [a]}\nname: x\n",
            "job.yaml:5:1: name: unknown field; name belongs under metadata or each item of spec.inputs "
            "or spec.notify.webhook.secretKeyRef",
        ),
    ],
)
def test_a_field_at_the_wrong_level_is_pointed_to_its_section(text: str, expected: str) -> None:
    assert only_problem(text) == expected


def test_three_mistakes_give_three_lines_sorted_by_position() -> None:
    text = (
        VALID.replace("retries: 2", "retries: two")
        .replace("  resources:", "  resouces:")
        .replace("name: mnist", "name: MNIST")
    )
    assert problems(text) == [
        "job.yaml:3:18: metadata.name: name 'MNIST' must be lower-case letters, digits and '-', "
        "starting and ending with a letter or digit (Kubernetes DNS-1123 label)",
        "job.yaml:8:3: spec.resouces: unknown field; did you mean 'resources'?",
        "job.yaml:11:12: spec.retries: expected an integer, got 'two'",
    ]


def test_problems_on_one_line_are_sorted_by_column() -> None:
    text = spec("resources: {gpu: many, cpu: lots, memory: heaps}")
    assert problems(text) == [
        "job.yaml:6:20: spec.resources.gpu: expected an integer, got 'many'",
        "job.yaml:6:31: spec.resources.cpu: expected a CPU quantity like 2, 0.5 or 500m, got 'lots'",
        "job.yaml:6:45: spec.resources.memory: expected a memory quantity like 512Mi, 16Gi or 1073741824, "
        "got 'heaps'",
    ]


def test_reader_problems_and_validation_problems_are_reported_together() -> None:
    text = HEAD + "spec:\n  command: [a]\n  on: 1\n  retries: many\n  env: {A: 1, A: 2}\n"
    assert problems(text) == [
        "job.yaml:6:3: spec: key 'on' is read as true, not text; quote it: \"on\"",
        "job.yaml:7:12: spec.retries: expected an integer, got 'many'",
        "job.yaml:8:15: spec.env.A: duplicate key; it is already set on line 8",
    ]


def test_a_flood_of_problems_is_cut_short() -> None:
    text = HEAD + "spec:\n  command:\n" + "".join(f"    - {{a: {i}}}\n" for i in range(1000))
    found = problems(text)
    assert len(found) == MAX_PROBLEMS + 1
    assert found[0] == "job.yaml:6:7: spec.command[0]: expected text, got a mapping"
    assert found[MAX_PROBLEMS - 1] == "job.yaml:205:7: spec.command[199]: expected text, got a mapping"
    assert found[-1] == "job.yaml:206:7: ... and 800 more problems"


def test_missing_fields_point_at_their_parent_and_say_what_to_add() -> None:
    assert problems("kind: Job\nmetadata:\n  labels: {a: b}\nspec:\n  env: {}\n") == [
        "job.yaml:1:1: apiVersion: required field is missing; add apiVersion: runner/v1",
        "job.yaml:2:1: metadata.name: required field is missing; name the job, like name: mnist",
        "job.yaml:4:1: spec.command: required field is missing; say what to run, like command: "
        "[python, train.py]",
    ]


def test_a_missing_field_of_a_list_item_points_at_the_item() -> None:
    assert only_problem(spec("inputs:", "  - {name: a, path: /a}")) == (
        "job.yaml:7:7: spec.inputs[0].source: required field is missing"
    )


def test_the_name_of_the_file_is_what_the_caller_passed() -> None:
    found = problems("kind: Pod\n", "jobs/x/job.yaml")
    assert found[0] == "jobs/x/job.yaml:1:1: apiVersion: required field is missing; add apiVersion: runner/v1"
    assert all(line.startswith("jobs/x/job.yaml:") for line in found)


def test_the_default_name_is_manifest() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest("")
    assert info.value.problems == [
        "<manifest>:1:1: the file is empty; expected a manifest with apiVersion, kind, metadata and spec"
    ]


def test_manifest_error_is_a_user_error_with_exit_code_2() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest("")
    assert isinstance(info.value, UserError)
    assert info.value.exit_code == 2


def test_keys_with_odd_characters_are_quoted_in_paths() -> None:
    assert only_problem(HEAD + 'spec: {command: [a], "x\\ny": 1}\n') == (
        "job.yaml:4:22: spec['x\\ny']: unknown field; expected one of: image, command, env, resources, workers, "
        "inputs, outputs, retries, timeout, schedule, retention, kubernetes, notify"
    )


def test_a_very_long_unknown_key_is_named_by_its_length_not_shown() -> None:
    message = only_problem(spec("k" * 1000 + ": 1"))
    assert (
        message
        == "job.yaml:6:3: spec[<a key of 1000 characters>]: unknown field; expected one of: image, "
        + (
            "command, env, resources, workers, inputs, outputs, retries, timeout, schedule, retention, kubernetes, notify"
        )
    )


# ------------------------------------------------------------------- bad YAML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: b: c\n",
            "job.yaml:1:5: a ':' where no mapping can start: indent this line like the keys around it, "
            "or quote a value that contains ': '",
        ),
        (
            "a:\n\tb: 1\n",
            "job.yaml:2:1: a tab character: YAML indents with spaces only; replace the tab with spaces",
        ),
        (
            "a: [1, 2\nb: 3\n",
            "job.yaml:2:2: the list in [brackets] that starts at line 1, column 4 is not closed, or lacks "
            "a ',': close it with ']'",
        ),
        (
            "a: 'open\n",
            "job.yaml:2:1: the quoted text that starts at line 1, column 4 is never closed: add its closing "
            "quote",
        ),
        (
            HEAD + "spec: {command: [a], schedule: {cron: @daily}}\n",
            "job.yaml:4:39: '@' cannot start a plain value: put the value in quotes, like '@daily'",
        ),
        (
            "a: *nothing\n",
            "job.yaml:1:4: the alias *nothing refers to no anchor: define it first with &nothing",
        ),
    ],
)
def test_yaml_syntax_errors(text: str, expected: str) -> None:
    assert only_problem(text) == expected


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "---\n...\n", "--- \n---\n"])
def test_empty_files(text: str) -> None:
    assert only_problem(text) == (
        "job.yaml:1:1: the file is empty; expected a manifest with apiVersion, kind, metadata and spec"
    )


def test_several_documents_are_refused_at_the_second() -> None:
    assert only_problem(VALID + "---\n" + VALID) == (
        "job.yaml:16:1: expected one manifest, found a second YAML document; put each job in its own file"
    )


def test_several_documents_stop_composing_early() -> None:
    # Anything after a second document is never read, even if it is broken.
    text = VALID + "---\n" + VALID + "---\n" + "a: b: c\n"
    assert only_problem(text).startswith("job.yaml:16:1: expected one manifest")


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("- a\n- b\n", "a list"),
        # never an excerpt of a file that is no manifest (a token, a key)
        ("just text\n", "a single value (text that is no manifest)"),
        ("42\n", "a single value (text that is no manifest)"),
    ],
)
def test_the_top_level_must_be_a_mapping(text: str, got: str) -> None:
    assert only_problem(text) == (
        f"job.yaml:1:1: expected a mapping with apiVersion, kind, metadata and spec at the top, got {got}"
    )


def test_duplicate_keys_are_refused_naming_the_first() -> None:
    text = VALID.replace("  retries: 2\n", "  retries: 2\n  retries: 3\n")
    assert problems(text) == ["job.yaml:12:3: spec.retries: duplicate key; it is already set on line 11"]


def test_the_first_of_duplicate_keys_is_validated_too() -> None:
    text = VALID.replace("  retries: 2\n", "  retries: -2\n  retries: 3\n")
    assert problems(text) == [
        "job.yaml:11:12: spec.retries: expected at least 0, got -2",
        "job.yaml:12:3: spec.retries: duplicate key; it is already set on line 11",
    ]


def test_duplicate_top_level_key() -> None:
    assert (
        only_problem(VALID + "kind: Job\n")
        == "job.yaml:15:1: kind: duplicate key; it is already set on line 2"
    )


def test_keys_read_as_booleans_numbers_or_null_must_be_quoted() -> None:
    text = (
        HEAD
        + "spec:\n  command: [a]\n  env:\n    on: x\n    1: y\n    ~: z\n    2024-01-01: w\n    'yes': v\n"
    )
    assert problems(text) == [
        "job.yaml:7:5: spec.env: key 'on' is read as true, not text; quote it: \"on\"",
        "job.yaml:8:5: spec.env: key '1' is read as the number 1, not text; quote it: \"1\"",
        "job.yaml:9:5: spec.env: key '~' is read as null, not text; quote it: \"~\"",
        "job.yaml:10:5: spec.env: key '2024-01-01' is read as a date, not text; quote it: \"2024-01-01\"",
    ]


def test_a_top_level_key_read_as_a_boolean() -> None:
    assert (
        only_problem(VALID + "no: 1\n")
        == "job.yaml:15:1: key 'no' is read as false, not text; quote it: \"no\""
    )


def test_a_complex_key_is_refused() -> None:
    assert only_problem(spec("? [a, b]", ": 1")) == (
        "job.yaml:6:5: spec: a key must be plain text, not a list or mapping"
    )


# ----------------------------------------------------------- values YAML cannot read


def test_a_date_that_does_not_exist() -> None:
    assert only_problem(spec("env: {A: 2024-13-45}")) == (
        "job.yaml:6:12: spec.env.A: cannot read '2024-13-45' as a date: month must be in 1..12"
    )


def test_an_integer_with_thousands_of_digits() -> None:
    assert only_problem(spec("retries: " + "9" * 5000)) == (
        "job.yaml:6:12: spec.retries: cannot read '" + "9" * 37 + "...' as an integer: it has too many digits"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!Ref x", "the YAML tag '!Ref' is not supported"),
        (
            "!!python/name:os.system x",
            "the YAML tag 'tag:yaml.org,2002:python/name:os.system' is not supported",
        ),
        (
            "!!python/object/apply:os.system [ls]",
            "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported",
        ),
        ("!!set {a, b}", "the YAML tag 'tag:yaml.org,2002:set' is not supported"),
        ("!!int abc", "cannot read 'abc' as an integer: invalid literal for int() with base 10: 'abc'"),
    ],
)
def test_unsupported_or_wrong_tags(value: str, expected: str) -> None:
    assert only_problem(spec(f"retries: {value}")) == f"job.yaml:6:12: spec.retries: {expected}"


def test_a_value_that_cannot_be_read_is_not_reported_twice() -> None:
    # The command's item is left out after its own message: no "expected text, got nothing" too.
    assert only_problem(spec("env: {A: 2024-02-30}")) == (
        "job.yaml:6:12: spec.env.A: cannot read '2024-02-30' as a date: day is out of range for month"
    )
    text = HEAD + "spec:\n  command: [a, !Ref b]\n"
    assert only_problem(text) == ("job.yaml:5:16: spec.command[1]: the YAML tag '!Ref' is not supported")


# ------------------------------------------------------------------ not text at all


def test_binary_junk() -> None:
    assert (
        only_problem(b"\x89PNG\r\n\x1a\n\x00\x00") == "job.yaml:3:1: not a text file (it contains NUL bytes)"
    )
    assert only_problem(b"\xc3\x28 junk without NUL") == (
        "job.yaml:1:1: not a UTF-8 text file (byte 0xc3 at offset 0); save the manifest as UTF-8"
    )


def test_utf16_is_recognised() -> None:
    assert (
        only_problem(VALID.encode("utf-16"))
        == "job.yaml:1:1: the file is UTF-16 text; save the manifest as UTF-8"
    )
    assert (
        only_problem(b"\xfe\xff\x00a") == "job.yaml:1:1: the file is UTF-16 text; save the manifest as UTF-8"
    )


def test_latin1_bytes_are_located() -> None:
    assert only_problem(b"apiVersion: runner/v1\nkind: Caf\xe9\n") == (
        "job.yaml:2:10: not a UTF-8 text file (byte 0xe9 at offset 31); save the manifest as UTF-8"
    )


def test_nul_bytes_are_located() -> None:
    assert only_problem(b"apiVersion: runner/v1\nkind: J\x00b\n") == (
        "job.yaml:2:8: not a text file (it contains NUL bytes)"
    )
    assert only_problem("a: \x00") == "job.yaml:1:4: not a text file (it contains NUL bytes)"


def test_control_characters_are_located() -> None:
    assert only_problem("apiVersion: runner/v1\nkind: \x07\n") == (
        "job.yaml:2:7: the character '\\x07' (U+0007) cannot appear in a YAML file; remove it"
    )


def test_lone_surrogates_in_text() -> None:
    assert only_problem("a: \ud800\n") == (
        "job.yaml:1:4: the character '\\ud800' (U+D800) cannot appear in a YAML file; remove it"
    )


def test_too_much_text_is_refused_before_parsing() -> None:
    big = b"#" * (MAX_MANIFEST_BYTES + 1)
    assert only_problem(big) == "job.yaml:1:1: the file is 1.0 MiB; a manifest is at most 1 MiB"
    assert only_problem(big.decode()) == (
        "job.yaml:1:1: the text is more than 1 MiB; a manifest is at most 1 MiB"
    )


# ------------------------------------------------------------- bombs and recursion

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_billion_laughs_alias_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    message = only_problem(BILLION_LAUGHS)
    assert time.monotonic() - started < 5  # generous: it takes well under a second
    assert message.endswith(
        f": more than {MAX_NODES} values, counting each use of an alias; a manifest has far fewer (is this an alias bomb?)"
    )
    assert message.startswith("job.yaml:")


def test_a_merge_key_bomb_is_refused_quickly() -> None:
    lines = ["x0: &m0 {a: 1, b: 2, c: 3}"]
    for level in range(1, 10):
        merged = ", ".join([f"*m{level - 1}"] * 9)
        lines.append(f"x{level}: &m{level} {{<<: [{merged}], k{level}: 1}}")
    started = time.monotonic()
    message = only_problem("\n".join(lines) + "\n")
    assert time.monotonic() - started < 5
    assert message.endswith("(is this an alias bomb?)")


def test_a_recursive_alias_is_refused() -> None:
    assert only_problem("a: &a [*a]\n") == (
        f"job.yaml:1:4: lists or mappings are nested more than {MAX_DEPTH} levels deep (a recursive alias?)"
    )
    assert only_problem("a: &a {<<: *a}\n").endswith(f"merge keys (<<) are nested more than {MAX_DEPTH} deep")


@pytest.mark.parametrize(
    "text", ["a: " + "[" * 5000 + "]" * 5000 + "\n", "a: " + "{a: " * 3000 + "1" + "}" * 3000]
)
def test_absurd_nesting_is_refused(text: str) -> None:
    assert (
        only_problem(text)
        == f"job.yaml:1:1: lists or mappings are nested too deeply (at most {MAX_DEPTH} levels)"
    )


def test_moderate_nesting_is_located() -> None:
    assert only_problem("a: " + "[" * 100 + "]" * 100 + "\n") == (
        f"job.yaml:1:{4 + MAX_DEPTH}: lists or mappings are nested more than {MAX_DEPTH} levels deep "
        "(a recursive alias?)"
    )


def test_a_merge_key_needs_mappings() -> None:
    assert problems(spec("resources: {<<: 5, gpu: 1}")) == [
        "job.yaml:6:19: spec.resources: a merge key (<<) takes a mapping or a list of mappings"
    ]


# ----------------------------------------------------------------- load_manifest


def load_problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    return info.value.problems


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.problems == [f"{path}: no such file"]
    assert info.value.hint == "check the path; manifests are YAML files such as job.yaml"


def test_a_directory(tmp_path: Path) -> None:
    assert load_problems(tmp_path) == [
        f"{tmp_path}: is a directory; expected a manifest file such as {tmp_path}/job.yaml"
    ]


def test_a_ten_megabyte_file_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a" * 10_000_000)
    started = time.monotonic()
    assert load_problems(path) == [f"{path}: the file is 9.5 MiB; a manifest is at most 1 MiB"]
    assert time.monotonic() - started < 5


def test_a_device_without_a_size_is_read_with_a_bound() -> None:
    path = Path("/dev/zero")
    if not path.exists():
        pytest.skip("no /dev/zero here")
    assert load_problems(path) == ["/dev/zero: the file is more than 1 MiB; a manifest is at most 1 MiB"]


def test_a_fifo_nothing_writes_to_is_refused_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 (15): opening a FIFO for reading waits for a writer; the loader never does."""
    monkeypatch.setattr(loader, "PIPE_WAIT_SECONDS", 0.2)
    path = tmp_path / "job.yaml"
    os.mkfifo(path)
    problems = run_bounded(lambda: load_problems(path))
    assert problems == [
        f"{path}: is a FIFO (named pipe) with nothing to read after 0.2s; a manifest is a file"
    ]


def test_a_pipe_with_a_writer_is_read(tmp_path: Path) -> None:
    """`runner validate <(envsubst < job.yaml)`: the shell's pipe, written to while it is read."""
    path = tmp_path / "job.yaml"
    os.mkfifo(path)

    def write() -> None:
        with path.open("w") as pipe:
            pipe.write(VALID)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    loaded = run_bounded(lambda: load_manifest(path))
    writer.join(10)
    assert loaded.text == VALID
    read_end, write_end = os.pipe()
    os.write(write_end, VALID.encode())
    os.close(write_end)
    try:
        assert run_bounded(lambda: load_manifest(Path(f"/proc/self/fd/{read_end}"))).text == VALID
    finally:
        os.close(read_end)


T = TypeVar("T")


def run_bounded(call: Callable[[], T], timeout: float = 30) -> T:
    """call() in a thread: a hang fails the test rather than the suite."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert results, f"still waiting after {timeout}s"
    return results[0]


def test_an_unreadable_file() -> None:
    """Read as an unprivileged user: tests usually run as root, who reads everything."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch).chmod(0o755)
        path = Path(scratch) / "secret.yaml"
        path.write_text(VALID)
        path.chmod(0)
        probe = (
            "import sys\n"
            "from runner.errors import ManifestError\n"
            "from runner.spec import load_manifest\n"
            "import os\n"
            "if os.geteuid() == 0:\n    os.setgid(65534)\n    os.setuid(65534)\n"
            "try:\n    load_manifest(__import__('pathlib').Path(sys.argv[1]))\n"
            "except ManifestError as error:\n    print(error.problems)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert done.stdout.strip() == repr([f"{path}: permission denied"])


def test_a_name_too_long_for_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 300 + ".yaml")
    assert load_problems(path) == [f"{path}: cannot read the file: File name too long"]


def test_a_file_through_a_symlink_loop(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert load_problems(loop) == [f"{loop}: cannot read the file: Too many levels of symbolic links"]


def test_errors_in_a_file_are_named_after_the_path_given(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(VALID.replace("retries: 2", "retries: -1"))
    assert load_problems(path) == [f"{path}:11:12: spec.retries: expected at least 0, got -1"]
