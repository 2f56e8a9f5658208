"""The command line as a whole: fast help, the error boundary, exit codes, empty states."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result

Runner = Callable[..., Result]


def test_help_does_not_import_heavy_modules() -> None:
    probe = (
        "import sys, runner.cli.main as m\n"
        "names = ('pydantic', 'yaml', 'sqlite3', 'runner.service', 'runner.spec')\n"
        "heavy = [n for n in names if n in sys.modules]\n"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_help_and_version(runner: Runner) -> None:
    result = runner("--help")
    assert result.code == 0
    for command in ("submit", "validate", "render", "list", "status", "logs", "cancel", "artifacts"):
        assert command in result.stdout
    assert runner("--version").stdout.startswith("runner, version ")


def test_unknown_command_is_a_usage_error(runner: Runner) -> None:
    result = runner("sbumit")
    assert result.code == 2
    assert "No such command 'sbumit'" in result.stderr


def test_errors_have_no_traceback_unless_debug(runner: Runner, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    plain = runner("submit", missing)
    assert plain.code == 2
    assert plain.stderr.startswith(f"{missing}: no such file")
    assert "Traceback" not in plain.stderr
    debug = runner("--debug", "submit", missing)
    assert "Traceback" in debug.stderr and "ManifestError" in debug.stderr


def test_unknown_backend(runner: Runner, job: Callable[..., Path]) -> None:
    result = runner("submit", "--backend", "slurm", str(job()))
    assert result.code == 2
    assert "unknown backend 'slurm'" in result.stderr and "choose one of" in result.stderr


def test_empty_list_says_what_to_do(runner: Runner) -> None:
    result = runner("list")
    assert result.code == 0
    assert result.stdout == ""
    assert "runner submit jobs/mnist/job.yaml" in result.stderr
    assert runner("list", "-o", "json").stdout == "[]\n"


def test_bad_settings_are_reported(runner: Runner) -> None:
    result = runner("list", env={"RUNNER_GRACE": "soon"})
    assert result.code == 2
    assert "RUNNER_GRACE='soon' is not a number of seconds" in result.stderr


def test_a_closed_pipe_ends_quietly(job: Callable[..., Path]) -> None:
    from tests.conftest import runner_command

    manifest = job("many", command=["sh", "-c", "seq 1 200000"])
    done = subprocess.run(
        ["sh", "-c", f"{' '.join(runner_command('submit', str(manifest)))} | head -n 1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.endswith("] 1\n")
    assert "Traceback" not in done.stderr


def test_cancel_handles_every_run_when_one_is_unknown(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    first = runner("submit", "--detach", str(job("sleepy-a", command=["sleep", "60"])))
    second = runner("submit", "--detach", str(job("sleepy-b", command=["sleep", "60"])))
    a, b = first.stdout.strip(), second.stdout.strip()
    result = runner("cancel", a, "no-such-run", b)
    assert result.code == 1, result.output
    assert f"run {a} cancelled" in result.stdout and f"run {b} cancelled" in result.stdout
    assert "error: no run or job named 'no-such-run'" in result.stderr
    assert "Traceback" not in result.output
