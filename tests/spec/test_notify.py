"""spec.notify: a webhook by reference only, and which run ends it is told of."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ManifestError
from runner.spec import load_manifest
from runner.spec.model import JobManifest

HEAD = "apiVersion: runner/v1\nkind: Job\nmetadata: {name: told}\nspec:\n  command: [python, t.py]\n"


def manifest(tmp_path: Path, body: str) -> JobManifest:
    path = tmp_path / "job.yaml"
    path.write_text(HEAD + body)
    loaded: JobManifest = load_manifest(path).manifest
    return loaded


def problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "job.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [problem.replace(f"{tmp_path}/", "") for problem in caught.value.problems]


def test_a_reference_and_the_ends_to_tell(tmp_path: Path) -> None:
    notify = manifest(
        tmp_path, '  notify:\n    webhook: {secretKeyRef: {name: slack, key: url}}\n    "on": [failed]\n'
    ).spec.notify
    assert notify is not None and notify.on == ["failed"]
    assert notify.webhook.secret_key_ref is not None and notify.webhook.secret_key_ref.name == "slack"
    assert notify.to_env() == "failed"


def test_failures_and_successes_are_told_unless_said_otherwise(tmp_path: Path) -> None:
    notify = manifest(tmp_path, "  notify:\n    webhook: {fromEnv: SLACK_WEBHOOK}\n").spec.notify
    assert notify is not None and notify.on == ["failed", "succeeded"]


def test_the_resolved_manifest_keeps_the_reference_never_a_url(tmp_path: Path) -> None:
    loaded = manifest(tmp_path, "  notify:\n    webhook: {fromEnv: SLACK_WEBHOOK}\n")
    assert loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)["notify"] == {
        "webhook": {"fromEnv": "SLACK_WEBHOOK"},
        "on": ["failed", "succeeded"],
    }


def test_a_url_written_in_the_manifest_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, "  notify:\n    webhook: https://hooks.slack.com/services/T/B/X\n") == [
        "job.yaml:7:14: spec.notify.webhook: the webhook's URL is a secret: give a reference, not the URL, "
        "like {fromEnv: SLACK_WEBHOOK} or {secretKeyRef: {name: slack, key: url}}"
    ]


def test_unknown_and_repeated_ends_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, '  notify:\n    webhook: {fromEnv: HOOK}\n    "on": [failed, finished]\n')
    assert len(found) == 1 and "spec.notify.on" in found[0] and "'finished'" in found[0]
    repeated = problems(tmp_path, '  notify:\n    webhook: {fromEnv: HOOK}\n    "on": [failed, failed]\n')
    assert len(repeated) == 1 and "each event once" in repeated[0]
