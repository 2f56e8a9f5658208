"""plan_run's inputs: local paths made absolute, s3:// and pvc:// sources kept, bad overrides refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ManifestError, UserError
from runner.service.plan import parse_overrides, plan_run
from runner.spec import load_manifest
from runner.spec.model import check_input_source, input_kind, parse_pvc
from tests.conftest import write_job


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("data/cells", "local"),
        ("/data/cells", "local"),
        ("file:///data/cells", "local"),
        ("s3://b/cells/", "s3"),
        ("pvc://claim/sub", "pvc"),
        ("https://host/x", "url"),
    ],
)
def test_input_kinds(source: str, kind: str) -> None:
    assert input_kind(source) == kind


def test_pvc_sources() -> None:
    assert parse_pvc("pvc://claim") == ("claim", None)
    assert parse_pvc("pvc://claim/a/b/") == ("claim", "a/b")
    for bad in ("pvc://", "pvc://Claim", "pvc://claim/../x", "s3://bucket", "s3://bucket/"):
        with pytest.raises(ValueError, match=r"expected|must|not allowed|lower"):
            check_input_source(bad)


def test_sources_are_resolved_and_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_job(
        tmp_path / "job",
        inputs=[
            {"name": "cells", "source": "data/cells", "path": "/data/cells"},
            {"name": "labels", "source": "s3://b/labels/", "path": "/data/labels"},
            {"name": "shared", "source": "pvc://datasets/shared", "path": "/data/shared"},
        ],
    )
    monkeypatch.chdir(tmp_path)
    plan = plan_run(load_manifest(path), {})
    assert plan.inputs == {
        "cells": str(tmp_path / "job" / "data" / "cells"),
        "labels": "s3://b/labels/",
        "shared": "pvc://datasets/shared",
    }
    overridden = plan_run(load_manifest(path), parse_overrides(["cells=s3://b/c", "labels=here"]))
    assert overridden.inputs["cells"] == "s3://b/c"
    assert overridden.inputs["labels"] == str(tmp_path / "here")


@pytest.mark.parametrize("override", ["cells=pvc://", "cells=s3://bucket", "cells=pvc://Bad"])
def test_a_malformed_override_is_a_user_error(tmp_path: Path, override: str) -> None:
    path = write_job(tmp_path, inputs=[{"name": "cells", "source": "data", "path": "/data"}])
    with pytest.raises(UserError, match="--input cells=") as raised:
        plan_run(load_manifest(path), parse_overrides([override]))
    assert raised.value.exit_code == 2 and raised.value.hint


def test_a_malformed_source_in_the_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    path = write_job(tmp_path, inputs=[{"name": "cells", "source": "s3://bucket", "path": "/data"}])
    with pytest.raises(ManifestError, match="expected s3://BUCKET/PREFIX"):
        load_manifest(path)
