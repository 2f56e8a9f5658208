"""The fake API server's pure parts: patches, selectors, validation rules, table formatting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apiserver import resources, rules
from tests.support.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.support.apiserver.selectors import (
    field_matcher,
    format_selector,
    parse_labels,
    selector_dict_matcher,
)
from tests.support.apiserver.tables import human_duration

POD: dict[str, Any] = {
    "metadata": {"name": "p", "finalizers": ["a", "b"]},
    "spec": {
        "containers": [
            {
                "name": "main",
                "image": "one",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            },
            {"name": "side", "image": "two"},
        ],
        "tolerations": [{"key": "x", "operator": "Exists"}],
    },
}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    patched = merge_patch(POD, {"metadata": {"finalizers": None}, "spec": {"containers": [{"name": "only"}]}})
    assert "finalizers" not in patched["metadata"]
    assert patched["spec"]["containers"] == [{"name": "only"}]
    assert POD["metadata"]["finalizers"] == ["a", "b"], "patches never change their input"


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "new",
                    "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                },
                {"name": "side", "$patch": "delete"},
            ],
            "$setElementOrder/containers": [{"name": "main"}],
            "tolerations": [{"key": "y", "operator": "Exists"}],
        },
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"l": "v"}},
    }
    patched = strategic_merge_patch(POD, patch)
    [main] = patched["spec"]["containers"]
    assert main["image"] == "new"
    assert main["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert patched["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}], "no merge key: replaced"
    assert patched["metadata"] == {"name": "p", "finalizers": ["b"], "labels": {"l": "v"}}

    finalizers = strategic_merge_patch(POD, {"metadata": {"finalizers": ["b", "c"]}})
    assert finalizers["metadata"]["finalizers"] == ["a", "b", "c"], "primitive merge lists are unions"
    replaced = strategic_merge_patch(POD, {"spec": {"$patch": "replace", "containers": []}})
    assert replaced["spec"] == {"containers": []}
    retained = strategic_merge_patch({"a": 1, "b": 2}, {"$retainKeys": ["b", "c"], "c": 3})
    assert retained == {"b": 2, "c": 3}


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    patched = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "test", "path": "/e", "value": "y"},
        ],
    )
    assert patched == {"a": {"b": [2, 3]}, "c": "y", "e": "y"}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/c", "value": "nope"}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/missing"}])


def test_label_selectors() -> None:
    labels = {"app": "mnist", "tier": "gpu", "replicas": "3"}
    assert parse_labels("app=mnist,tier in (gpu, cpu)")(labels)
    assert parse_labels("team notin (a),!team,app!=other")(labels), "absent keys satisfy != notin and !"
    assert parse_labels("replicas>2,replicas<4")(labels)
    assert not parse_labels("app,team")(labels)
    assert parse_labels("")({})
    for bad in ("app=(x", "a b", "=x", "app in x"):
        with pytest.raises(ValueError):
            parse_labels(bad)

    selector = {"matchLabels": {"app": "mnist"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    assert format_selector(selector) == "app=mnist,tier"
    assert selector_dict_matcher(selector)(labels)
    assert not selector_dict_matcher(None)(labels), "a nil selector selects nothing"


def test_field_selectors() -> None:
    allowed = ("metadata.name", "status.phase", "spec.hostNetwork")
    pod = {"metadata": {"name": "a,b"}, "status": {"phase": "Running"}, "spec": {"hostNetwork": False}}
    assert field_matcher(r"metadata.name=a\,b", allowed)(pod)
    assert field_matcher("status.phase!=Pending,spec.hostNetwork=false", allowed)(pod)
    with pytest.raises(ValueError, match="field label not supported"):
        field_matcher("spec.nodeName=x", allowed)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (610, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
    ],
)
def test_human_duration(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_validation_rules() -> None:
    jobs, cronjobs, namespaces = (resources.lookup(k) for k in ("jobs", "cj", "Namespace"))
    assert rules.name_causes(jobs, "a" * 63) == []
    assert "no more than 63" in rules.name_causes(jobs, "a" * 64)[0].message
    assert "no more than 52" in rules.name_causes(cronjobs, "a" * 53)[0].message
    assert rules.name_causes(namespaces, "a.b")[0].field == "metadata.name"

    assert rules.cron_causes("0 2 * * *", "Asia/Seoul") == []
    assert rules.cron_causes("@hourly", None) == []
    assert "expected exactly 5 fields" in rules.cron_causes("0 2 * *", None)[0].message
    assert "use timeZone field" in rules.cron_causes("TZ=UTC 0 2 * * *", None)[0].message
    assert "unknown time zone" in rules.cron_causes("0 2 * * *", "Mars/Base")[0].message

    assert rules.parse_quantity("16Gi") == 16 * 2**30
    assert rules.parse_quantity("500m") == rules.parse_quantity("0.5")
    assert rules.parse_quantity("lots") is None
    gpu = {"limits": {"nvidia.com/gpu": 1}, "requests": {"nvidia.com/gpu": 2}}
    container = {"name": "main", "image": "i", "resources": gpu}
    causes = rules.pod_spec_causes(
        {"containers": [container], "restartPolicy": "Never"}, "spec", restart_policies=("Never",)
    )
    assert [c.field for c in causes] == ["spec.containers[0].resources.requests[nvidia.com/gpu]"]
