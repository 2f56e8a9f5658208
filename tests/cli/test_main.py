"""The command line as a whole: fast help, the error boundary, exit codes, empty states."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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


def _loaded_after(imports: str, watched: tuple[str, ...]) -> list[str]:
    """Which of watched a fresh interpreter has loaded after `import imports`."""
    probe = f"import sys, {imports}\nprint(sorted(n for n in {watched!r} if n in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(ast.literal_eval(done.stdout))


def test_a_docker_supervisor_does_not_import_the_manifest_models() -> None:
    """It renders containers and reads labels only: runner.render and runner.spec load their names
    lazily (runner.lazyexports), so pydantic (some 150 ms) stays out of the path to a submit's first
    log line."""
    watched = ("pydantic", "yaml", "docker", "runner.spec.model", "runner.render.kubernetes")
    imports = "runner.backends.local.supervisor, runner.backends.local.docker"
    assert _loaded_after(imports, watched) == []


def test_listing_cluster_runs_does_not_import_the_renderings() -> None:
    """`runner list --cluster` reads Jobs through the cluster backend: the manifest checks and
    pydantic's models (some 100 ms of its start) load only when a run is rendered."""
    watched = ("pydantic", "runner.spec.model", "runner.render.kubernetes.checks")
    assert _loaded_after("runner.backends.kubernetes.backend", watched) == []
    assert _loaded_after("runner.render.kubernetes", watched) == []


def test_building_an_image_does_not_import_the_runs() -> None:
    """`runner build` of an unchanged job is mostly start-up: it loads no records, store or backends."""
    watched = ("runner.records", "runner.store", "runner.service.runs", "runner.backends")
    assert _loaded_after("runner.cli.main, runner.service.imagebuild", watched) == []


@pytest.mark.parametrize(
    "package", ["runner.spec", "runner.render", "runner.render.kubernetes", "runner.service"]
)
def test_every_lazily_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, "the package exports names"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = module.no_such_name
