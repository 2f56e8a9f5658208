"""Inputs in a run's pod: s3:// prefixes for the agent to fetch (RUNNER_INPUTS), pvc:// claims mounted
read-only, local paths refused (runner submit uploads them first)."""

from __future__ import annotations

import json

import pytest

from runner.errors import UserError
from tests.render.test_kubernetes import container, env, manifest_of, pod, render
from tests.support.kube_rules import restricted_problems, validate


def test_s3_inputs_are_fetched_by_the_agent_into_an_empty_directory() -> None:
    manifest = manifest_of(inputs=[{"name": "cells", "source": "s3://data/cells/", "path": "/data/cells"}])
    _, job = render(manifest)
    assert json.loads(env(job)["RUNNER_INPUTS"]) == {
        "cells": {"source": "s3://data/cells/", "path": "/data/cells"}
    }
    assert {"name": "input-0", "emptyDir": {}} in pod(job)["volumes"]


def test_a_pvc_input_is_mounted_read_only_with_its_subpath() -> None:
    manifest = manifest_of(
        inputs=[
            {"name": "cells", "source": "pvc://datasets/malaria/cells", "path": "/data/cells"},
            {"name": "whole", "source": "pvc://scratch", "path": "/data/whole"},
        ]
    )
    _, job = render(manifest)
    volumes = {volume["name"]: volume for volume in pod(job)["volumes"]}
    assert volumes["input-0"] == {
        "name": "input-0",
        "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True},
    }
    assert volumes["input-1"]["persistentVolumeClaim"] == {"claimName": "scratch", "readOnly": True}
    mounts = {mount["name"]: mount for mount in container(job)["volumeMounts"]}
    assert mounts["input-0"] == {
        "name": "input-0",
        "mountPath": "/data/cells",
        "readOnly": True,
        "subPath": "malaria/cells",
    }
    assert "subPath" not in mounts["input-1"]
    assert "RUNNER_INPUTS" not in env(job)  # mounted, nothing to fetch
    assert env(job)["RUNNER_INPUT_CELLS"] == "/data/cells"
    validate(job, "1.29")
    assert restricted_problems(pod(job)) == []


def test_an_override_to_a_pvc_is_rendered_as_one() -> None:
    manifest = manifest_of(inputs=[{"name": "cells", "source": "s3://data/cells/", "path": "/data/cells"}])
    _, job = render(manifest, inputs={"cells": "pvc://datasets"})
    assert pod(job)["volumes"][-1]["persistentVolumeClaim"]["claimName"] == "datasets"
    assert "RUNNER_INPUTS" not in env(job)


@pytest.mark.parametrize("source", ["pvc://Bad_Claim", "pvc://claim/../x"])
def test_a_malformed_pvc_override_is_refused(source: str) -> None:
    manifest = manifest_of(inputs=[{"name": "cells", "source": "s3://data/cells/", "path": "/data/cells"}])
    with pytest.raises(UserError, match="input 'cells'"):
        render(manifest, inputs={"cells": source})


def test_a_local_path_left_in_the_plan_is_refused_with_a_hint() -> None:
    manifest = manifest_of(inputs=[{"name": "cells", "source": "s3://data/cells/", "path": "/data/cells"}])
    with pytest.raises(UserError, match="cannot read paths on this machine") as raised:
        render(manifest, inputs={"cells": "/home/me/cells"})
    assert raised.value.hint is not None and "uploads" in raised.value.hint
