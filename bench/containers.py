"""The docker backend against plain Docker, side by side.

    runner submit --backend docker (image already built): time to the first log line
        vs  docker run of the same image: time to the first line
    runner build of an unchanged job (content hash hit), and the same check in-process
        vs  a warm-cache docker build of the same build context

Each runner command is the console script's (runner.cli.entry) three ways: as by default once a
command has started the resident runner (runner.cli.resident), which has the CLI's modules imported and
forks the command; as the first command of a session, which finds none, runs in its own process and
starts one (each sample a server of its own, stopped afterwards); and with RUNNER_RESIDENT=0, in its own
process.

Each pair is sampled in turns (runner, baseline, resident runner, ...), so that a busy moment of the
machine slows every side alike; the runner's bytecode is written first, as an installed package has
it. Needs a running engine (scripts/engine.sh start) and the small python base image the tests build
(python -m tests.support.engine.base_images). Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.images.build import build_inputs, ensure_image  # noqa: E402
from runner.images.recipe import build_recipe  # noqa: E402
from runner.images.tarstream import ContextStream  # noqa: E402
from runner.images.wheel import runner_version, runner_wheel  # noqa: E402
from runner.spec import load_manifest  # noqa: E402
from tests.support.engine.base_images import python_base  # noqa: E402
from tests.support.resident import ENTRY, resident_server  # noqa: E402

if TYPE_CHECKING:
    import docker

DOCKER = "/usr/bin/docker"


def first_line_seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    """Seconds from starting argv until it prints its first line on stdout; then it is left to finish."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.communicate(timeout=300)
    if b"first" not in line:  # a command that failed before its first line would time its failure
        raise SystemExit(
            f"{argv[0]} ... printed {line!r} first, not the job's line (exit {process.returncode})"
        )
    return elapsed


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_turns(samplers: Sequence[Callable[[], float]], repeat: int) -> list[list[float]]:
    """repeat samples of each, taken in turns (ours, baseline, ours, ...), so that a machine busier for
    a while slows every side alike instead of one."""
    samples: list[list[float]] = [[] for _ in samplers]
    for _ in range(repeat):
        for sampler, taken in zip(samplers, samples, strict=True):
            taken.append(sampler())
    return samples


def compiled_runner() -> None:
    """Write the runner package's bytecode, as an installed package has it: a shell with
    PYTHONDONTWRITEBYTECODE (or a fresh checkout) would otherwise compile every module on each start."""
    import compileall

    compileall.compile_dir(REPO / "runner", quiet=1)


def first_of_session(sample: Callable[[dict[str, str]], float], env: dict[str, str]) -> float:
    """sample(env) for a command that finds no resident server and starts one (an address of its own);
    that server is stopped once it answers, before the next sample."""
    fresh = {**env, "RUNNER_RESIDENT_ADDRESS": f"runner-bench-{uuid.uuid4().hex[:12]}"}
    fresh.pop("RUNNER_RESIDENT", None)
    seconds = sample(fresh)
    for _ in range(300):
        stopping = subprocess.run([*ENTRY, "resident", "stop"], env=fresh, check=False, capture_output=True)
        if stopping.stdout.startswith(b"resident server"):
            break
        time.sleep(0.1)
    return seconds


def row(name: str, ours: list[float], baseline_name: str, base: list[float]) -> str:
    a, b = statistics.median(ours), statistics.median(base)
    return f"{name:<40} {a * 1000:9.1f} ms   {baseline_name:<36} {b * 1000:9.1f} ms   {a / b:6.2f}x"


def context_tar(manifest_path: Path, home: Path, client: docker.DockerClient) -> bytes:
    """The build context runner sends for this job, as a tar (for the docker build baseline): the
    recipe's entries, the runner's wheel and the wheels resolved on the host, as runner.images.build
    streams them."""
    loaded = load_manifest(manifest_path)
    context = loaded.context_dir
    recipe = build_recipe(loaded.manifest, context, runner_version=runner_version())
    wheel = runner_wheel(home / "cache" / "wheels")
    inputs = build_inputs(client, recipe, home / "cache", home / "builds", lambda _: None)
    return b"".join(ContextStream(recipe, context, wheel, extra=inputs.extra()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    compiled_runner()
    base = python_base()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        env = {**os.environ, "RUNNER_HOME": str(home), "RUNNER_BACKEND": "docker", "RUNNER_GRACE": "1"}
        job = Path(scratch) / "job"
        job.mkdir()
        (job / "job.yaml").write_text(
            "apiVersion: runner/v1\nkind: Job\nmetadata: {name: benchfirst}\n"
            f"spec: {{image: {{base: '{base}'}}, command: [sh, -c, 'echo first; sleep 1']}}\n"
        )
        built = ensure_image(
            load_manifest(job / "job.yaml").manifest,
            job,
            registry=None,
            progress=lambda _: None,
            cache_dir=home / "cache",
            log_dir=home / "builds",
        )
        submit = [*ENTRY, "submit", str(job / "job.yaml")]
        own_process = {**env, "RUNNER_RESIDENT": "0"}
        run_env = [
            "-e",
            "RUNNER_STORE=none",
            "-e",
            "RUNNER_JOB=benchfirst",
            "-e",
            "RUNNER_RUN_ID=benchfirst-x",
        ]
        with resident_server(env) as resident_env:
            submitted, plain, first_submitted, submitted_alone = in_turns(
                [
                    lambda: first_line_seconds(submit, resident_env),
                    lambda: first_line_seconds([DOCKER, "run", "--rm", *run_env, built.reference], env),
                    lambda: first_of_session(lambda fresh: first_line_seconds(submit, fresh), env),
                    lambda: first_line_seconds(submit, own_process),
                ],
                args.repeat,
            )
        import docker

        client = docker.from_env()
        tar = context_tar(job / "job.yaml", home, client)
        # warm the layer cache
        baseline, _ = client.images.build(fileobj=io.BytesIO(tar), custom_context=True, rm=True)
        build = [*ENTRY, "build", "--no-push", str(job / "job.yaml")]

        def build_seconds(build_env: dict[str, str]) -> float:
            return timed(lambda: subprocess.run(build, env=build_env, check=True, capture_output=True))

        with resident_server(env) as resident_env:
            cached, warm, first_cached, cached_alone = in_turns(
                [
                    lambda: build_seconds(resident_env),
                    lambda: timed(
                        lambda: client.images.build(fileobj=io.BytesIO(tar), custom_context=True, rm=True)
                    ),
                    lambda: first_of_session(build_seconds, env),
                    lambda: build_seconds(own_process),
                ],
                args.repeat,
            )
        manifest = load_manifest(job / "job.yaml").manifest
        in_process = [
            timed(
                lambda: ensure_image(
                    manifest, job, registry=None, progress=lambda _: None, cache_dir=home / "cache"
                )
            )
            for _ in range(args.repeat)
        ]
        for image in (built.reference, str(baseline.id)):  # what the benchmark built, not the base
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image)
    docker_run, docker_build = "docker run, first line", "docker build, warm cache"
    print(f"median of {args.repeat} runs each; ratio = runner / baseline")
    print(f"{'subject':<40} {'time':>12}   {'baseline':<36} {'time':>12}   {'ratio':>7}")
    print(row("submit --backend docker, first log line", submitted, docker_run, plain))
    print(row("  the same, first command of a session", first_submitted, docker_run, plain))
    print(row("  the same, RUNNER_RESIDENT=0", submitted_alone, docker_run, plain))
    print(row("runner build, unchanged job", cached, docker_build, warm))
    print(row("  the same, first command of a session", first_cached, docker_build, warm))
    print(row("  the same, RUNNER_RESIDENT=0", cached_alone, docker_build, warm))
    print(row("  the same check in-process (no start-up)", in_process, docker_build, warm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
