"""The everyday verbs issue 14's new user reached for, through the real command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import Result, submitted_run

Runner = Callable[..., Result]


def ids(result: Result) -> list[str]:
    assert result.code == 0, result.output
    return [run["id"] for run in json.loads(result.stdout)]


# ---------------------------------------------------------------- list --state, -l


def test_list_by_state_and_labels(runner: Runner, job: Callable[..., Path]) -> None:
    good = submitted_run(runner("submit", str(job("good", command=["true"]))))
    bad = submitted_run(runner("submit", str(job("bad", command=["false"]))))
    path = job("labelled", command=["true"])
    text = path.read_text().replace("name: labelled", "name: labelled\n  labels: {team: vision, tier: dev}")
    path.write_text(text)
    labelled = submitted_run(runner("submit", str(path)))

    assert ids(runner("list", "--state", "failed", "-o", "json")) == [bad]
    assert ids(runner("list", "--state", "failed,succeeded", "-o", "json")) == [labelled, bad, good]
    assert ids(runner("list", "--state", "failed", "--state", "succeeded", "--limit", "1", "-o", "json")) == [
        labelled
    ]
    assert ids(runner("list", "-l", "team=vision", "-o", "json")) == [labelled]
    assert ids(runner("list", "-l", "team=vision,tier!=prod", "-l", "tier", "-o", "json")) == [labelled]
    assert ids(runner("list", "-l", "!team", "-o", "json")) == [bad, good]
    assert ids(runner("list", "-l", "team!=vision", "-o", "json")) == [bad, good]
    assert ids(runner("list", "-l", "runner.dev/job=good", "-o", "json")) == [good]

    none = runner("list", "--state", "running")
    assert none.code == 0 and "No runs match the --state and -l given" in none.stderr, none.output
    assert bad in runner("list", "--state", "failed").stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--state", "done"), "'done': not a run state; choose from building, pending, running"),
        (("-l", "a=b=c"), "label selector 'a=b=c': expected key=value"),
    ],
)
def test_list_refuses_a_bad_filter(runner: Runner, home: Path, args: tuple[str, ...], said: str) -> None:
    result = runner("list", *args)
    assert result.code == 2 and said in result.stderr, result.output
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- logs --tail, --since


def test_logs_tail_across_attempts(runner: Runner, job: Callable[..., Path]) -> None:
    script = 'seq 1 5; [ "$RUNNER_ATTEMPT" = 2 ] || exit 1'
    run = submitted_run(runner("submit", str(job("twice", command=["sh", "-c", script], retries=1))))
    assert runner("logs", run, "--tail", "3").stdout == "3\n4\n5\n"
    both = runner("logs", run, "--tail", "7")
    assert both.stdout == "4\n5\n1\n2\n3\n4\n5\n" and "--- attempt 2 ---" in both.stderr, both.output
    assert runner("logs", run, "--tail", "0").stdout == ""
    assert runner("logs", run, "--tail", "2", "--attempt", "1").stdout == "4\n5\n"
    assert runner("logs", run, "--tail", "100").stdout == "1\n2\n3\n4\n5\n" * 2


def test_logs_since(runner: Runner, job: Callable[..., Path], home: Path) -> None:
    run = submitted_run(runner("submit", str(job("recent", command=["sh", "-c", "echo fresh"]))))
    assert runner("logs", run, "--since", "10m").stdout == "fresh\n"
    from runner.records import RunRecords
    from runner.store.runjson import rfc3339

    records = RunRecords(home / "runs.db")  # as if it had ended two hours ago
    record = records.get(run)
    attempts = [{**item, "finished": item["finished"] - 7200} for item in record.outcome["attempts"]]
    records.update(run, outcome={**record.outcome, "attempts": attempts})
    records.close()
    store_run = home / "store" / "recent" / run / "run.json"
    document = json.loads(store_run.read_text())
    document["attempts"][0]["finished"] = rfc3339(attempts[0]["finished"])
    store_run.write_text(json.dumps(document))
    assert runner("logs", run, "--since", "10m").stdout == ""
    assert runner("logs", run, "--since", "3h").stdout == "fresh\n"
    bad = runner("logs", run, "--since", "yesterday")
    assert bad.code == 2 and "--since" in bad.stderr, bad.output


# ---------------------------------------------------------------- submit --env --gpus --set --name


def test_submit_overrides_change_the_run(runner: Runner, job: Callable[..., Path], home: Path) -> None:
    path = job("base", command=["sh", "-c", 'echo "$GREETING $WHO"'], env={"WHO": "file"})
    result = runner(
        "submit",
        str(path),
        "--env",
        "GREETING=hello",
        "--env",
        "WHO=flag",
        "--set",
        "spec.retries=2",
        "--set",
        "metadata.labels.team=vision",
        "--name",
        "renamed",
    )
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert run.startswith("renamed-") and result.stdout == f"[{run}] hello flag\n", result.output
    shown = json.loads(runner("status", run, "-o", "json").stdout)
    assert shown["job"] == "renamed" and shown["maxAttempts"] == 3 and shown["labels"]["team"] == "vision"
    stored = (home / "store" / "renamed" / run / "job.yaml").read_text()
    assert "GREETING: hello" in stored and "retries: 2" in stored
    assert "hello" not in path.read_text() and "retries" not in path.read_text()  # the file stays


def test_submit_gpus_override_is_checked_like_the_file(runner: Runner, job: Callable[..., Path]) -> None:
    result = runner("submit", str(job()), "--gpus", "64:H100")
    assert result.code == 2, result.output
    assert "asks for 64 H100 GPU(s)" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("--set", "spec.retries=two"),
            "--set spec.retries=two: spec.retries: expected an integer, got 'two'",
        ),
        (
            ("--set", "spec.resouces.gpu=1"),
            "--set spec.resouces.gpu=1: spec.resouces: unknown field; did you mean",
        ),
        (("--set", "spec.timeout=2hours"), "--set spec.timeout=2hours: spec.timeout: unknown duration unit"),
        (("--env", "RUNNER_X=1"), "--env RUNNER_X=1: spec.env"),
        (("--name", "Bad_Name"), "--name Bad_Name: metadata.name"),
        (("--gpus", "x"), "--gpus 'x': expected N or N:TYPE"),
        (("--set", "retries"), "--set 'retries': expected PATH=VALUE"),
        (("--env", "=1"), "--env '=1': expected KEY=VALUE"),
    ],
)
def test_submit_overrides_are_validated_naming_the_flag(
    runner: Runner, job: Callable[..., Path], args: tuple[str, ...], said: str
) -> None:
    result = runner("submit", str(job()), *args)
    assert result.code == 2, result.output
    assert said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "job.yaml:" not in result.stderr
    assert json.loads(runner("list", "-o", "json").stdout) == []


# ---------------------------------------------------------------- delete, prune


def test_delete_a_run_and_optionally_its_artifacts(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    path = job("gone", command=["sh", "-c", 'echo x > "$RUNNER_OUTPUTS/model.txt"'])
    first = submitted_run(runner("submit", str(path)))
    second = submitted_run(runner("submit", str(path)))
    workdir = home / "runs" / first
    stored = home / "store" / "gone" / first

    dry = runner("delete", first, "--artifacts", "--dry-run")
    assert dry.code == 0 and f"run {first} would delete:" in dry.stdout and "its artifacts" in dry.stdout, (
        dry.output
    )
    assert (stored / "MANIFEST.json").exists() and runner("status", first).code == 0

    done = runner("delete", first)
    assert done.code == 0 and f"run {first} deleted: " in done.stdout, done.output
    assert not workdir.exists() and (stored / "MANIFEST.json").exists()
    assert runner("status", first).code == 1
    assert ids(runner("list", "-o", "json")) == [second]

    with_files = runner("delete", second, "--artifacts")
    assert with_files.code == 0 and "has no `latest` run" in with_files.stdout, with_files.output
    assert (
        not (home / "store" / "gone" / second).exists() and not (home / "store" / "gone" / "latest").exists()
    )

    missing = runner("delete", "nosuch", second)
    assert missing.code == 1 and "no run or job named 'nosuch'" in missing.stderr, missing.output


def test_delete_refuses_a_run_still_going(runner: Runner, job: Callable[..., Path]) -> None:
    result = runner("submit", "--detach", str(job("slow", command=["sleep", "30"])))
    run = result.stdout.strip()
    refused = runner("delete", run)
    assert refused.code == 2 and "cannot be deleted while it goes on" in refused.stderr, refused.output
    assert f"runner cancel {run}" in refused.stderr
    assert runner("cancel", run).code == 0
    assert runner("delete", run).code == 0


def test_prune_finished_runs_older_than(runner: Runner, job: Callable[..., Path], home: Path) -> None:
    old = submitted_run(runner("submit", str(job("old"))))
    new = submitted_run(runner("submit", str(job("new"))))
    from runner.records import RunRecords

    records = RunRecords(home / "runs.db")
    record = records.get(old)
    records.update(old, finished=(record.finished or 0) - 3 * 86400, created=record.created - 3 * 86400)
    records.close()

    dry = runner("prune", "--older-than", "2d", "--dry-run")
    assert dry.code == 0 and f"would remove run {old} (succeeded)" in dry.stdout and new not in dry.stdout, (
        dry.output
    )
    assert ids(runner("list", "-o", "json")) == [new, old]
    done = runner("prune", "--older-than", "2d")
    assert done.code == 0 and f"removed run {old}" in done.stdout, done.output
    assert ids(runner("list", "-o", "json")) == [new]
    assert (home / "store" / "old" / old / "MANIFEST.json").exists()  # artifacts only with --artifacts
    nothing = runner("prune", "--older-than", "2d")
    assert nothing.code == 0 and "No runs finished more than 2d ago." in nothing.stderr
    assert runner("prune", "--older-than", "soon").code == 2


# ---------------------------------------------------------------- init, completion


def test_init_writes_a_job_that_validates_and_runs(runner: Runner, tmp_path: Path, home: Path) -> None:
    directory = tmp_path / "My Job"
    made = runner("init", str(directory))
    assert made.code == 0, made.output
    assert {p.name for p in directory.iterdir()} == {
        "job.yaml",
        "train.py",
        "requirements.txt",
        ".dockerignore",
    }
    job_file = str(directory / "job.yaml")
    assert "runner validate" in made.stderr
    assert runner("validate", job_file).code == 0
    result = runner(
        "submit", "--set", "spec.command=[python, train.py, --epochs, '1']", job_file, timeout=300
    )
    assert result.code == 0, result.output
    assert "spec.image.requirements" not in result.stderr  # nothing to install on the process backend
    run = submitted_run(result)
    assert run.startswith("my-job-")
    files = runner("artifacts", run, "-o", "json")
    assert {"outputs/model.keras", "outputs/metrics.json"} <= {
        f["path"] for f in json.loads(files.stdout)["files"]
    }

    again = runner("init", str(directory))
    assert again.code == 2 and "already has job.yaml" in again.stderr and "--force" in again.stderr
    assert runner("init", str(directory), "--force", "--name", "other").code == 0
    assert "name: other" in (directory / "job.yaml").read_text()
    assert runner("init", str(tmp_path / "x"), "--name", "Bad_Name").code == 2


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(runner: Runner, shell: str) -> None:
    result = runner("completion", shell)
    assert result.code == 0 and "_RUNNER_COMPLETE" in result.stdout, result.output


def test_completion_completes_commands_options_and_runs(runner: Runner, job: Callable[..., Path]) -> None:
    run = submitted_run(runner("submit", str(job("completed"))))

    def complete(words: str) -> str:
        cword = str(len(words.split()) - 1)
        env = {"COMP_WORDS": words, "COMP_CWORD": cword, "_RUNNER_COMPLETE": "bash_complete"}
        return runner(env=env).stdout

    assert "plain,list" in complete("runner li")
    assert "plain,--state" in complete("runner list --st")
    assert f"plain,{run}" in complete(f"runner logs {run[:9]}")
    assert "plain,completed" in complete("runner status comp")


# ---------------------------------------------------------------- --context and -n, as kubectl


@pytest.fixture
def two_contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A kubeconfig whose current context `here` and other context `there` name API servers that
    refuse connections, on different ports, with different default namespaces; the two addresses."""
    from tests.cli.test_first_contact import refused_port

    here, there = f"127.0.0.1:{refused_port()}", f"127.0.0.1:{refused_port()}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "here", "cluster": {"server": f"http://{here}"}},
            {"name": "there", "cluster": {"server": f"http://{there}"}},
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "here", "context": {"cluster": "here", "user": "u", "namespace": "near"}},
            {"name": "there", "context": {"cluster": "there", "user": "u", "namespace": "far"}},
        ],
        "current-context": "here",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return here, there


def test_context_and_namespace_as_kubectl_takes_them(
    runner: Runner, job: Callable[..., Path], home: Path, two_contexts: tuple[str, str]
) -> None:
    here, there = (address.split(":")[1] for address in two_contexts)  # the ports: said in errors
    listed = runner("list", "--cluster", "--context", "there")
    assert listed.code == 0 and there in listed.stderr and here not in listed.stderr, listed.output
    assert here in runner("list", "--cluster").stderr

    cluster_env = {
        "RUNNER_REGISTRY": "r:5000",
        "RUNNER_STORE": "s3://bucket/runs",
        "RUNNER_STORE_SECRET": "s",
    }

    def namespaces(*args: str) -> set[str]:
        result = runner("render", str(job()), "--kubernetes", *args, env=cluster_env)
        assert result.code == 0, result.output
        return {item["metadata"]["namespace"] for item in yaml.safe_load_all(result.stdout)}

    assert namespaces() == {"near"}
    assert namespaces("--context", "there") == {"far"}
    assert namespaces("--context", "there", "-n", "ml") == {"ml"}

    env = {"RUNNER_REGISTRY": "", "RUNNER_STORE_SECRET": "", "RUNNER_STORE": ""}
    submitted = runner("submit", "--backend", "kubernetes", "--context", "nosuch", str(job()), env=env)
    assert submitted.code == 2 and "Expected object with name nosuch" in submitted.stderr, submitted.output
    bad = runner("submit", "--backend", "kubernetes", "-n", "Bad_NS", str(job()), env=env)
    assert bad.code == 2 and "--set spec.kubernetes.namespace=Bad_NS: spec.kubernetes.namespace" in bad.stderr

    schedules = runner("schedule", "list", "--cluster", "--context", "there")
    assert there in schedules.stderr and here not in schedules.stderr, schedules.output
