"""Start-up and submit overhead, each against its baseline, side by side.

    runner --help                                    vs  python -c pass
    runner submit (trivial job, process backend)     vs  running the job's command directly

each through the console script as by default, once a command has started the resident runner
(runner.cli.resident), and with RUNNER_RESIDENT=0, in its own process.

Run with `make bench` (or `python bench/startup.py --repeat 10`). Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.resident import ENTRY, resident_server  # noqa: E402

COMMAND = ["sh", "-c", "echo hello"]


def timed(argv: Sequence[str], env: dict[str, str], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return samples


def row(name: str, subject: list[float], baseline_name: str, baseline: list[float]) -> str:
    """Medians side by side, and the fastest of each (what a quiet machine gives, on a busy one)."""
    ours, base = statistics.median(subject), statistics.median(baseline)
    return (
        f"{name:<34} {ours * 1000:9.1f} ms   {baseline_name:<26} {base * 1000:9.1f} ms   {ours / base:7.1f}x"
        f"   (fastest {min(subject) * 1000:.0f} / {min(baseline) * 1000:.0f} ms)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "RUNNER_HOME": str(Path(scratch) / "home"), "RUNNER_BACKEND": "process"}
        # bytecode caches as an installed runner has them: without, every start compiles runner's modules
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        job = Path(scratch) / "job"
        job.mkdir()
        (job / "job.yaml").write_text(
            "apiVersion: runner/v1\nkind: Job\nmetadata: {name: trivial}\n"
            f"spec: {{command: [{', '.join(COMMAND[:2])}, '{COMMAND[2]}']}}\n"
        )
        timed([*ENTRY, "--help"], {**env, "RUNNER_RESIDENT": "0"}, 1)  # warm the page cache and bytecode
        own_process = {**env, "RUNNER_RESIDENT": "0"}
        submit = [*ENTRY, "submit", str(job / "job.yaml")]
        python_pass = timed([sys.executable, "-c", "pass"], env, args.repeat)
        command = timed(COMMAND, env, args.repeat)
        with resident_server(env) as served:
            results = [
                row(
                    "runner --help",
                    timed([*ENTRY, "--help"], served, args.repeat),
                    "python -c pass",
                    python_pass,
                ),
                row(
                    "  the same, RUNNER_RESIDENT=0",
                    timed([*ENTRY, "--help"], own_process, args.repeat),
                    "python -c pass",
                    python_pass,
                ),
                row(
                    "runner submit (trivial job)",
                    timed(submit, served, args.repeat),
                    "sh -c 'echo hello'",
                    command,
                ),
                row(
                    "  the same, RUNNER_RESIDENT=0",
                    timed(submit, own_process, args.repeat),
                    "sh -c 'echo hello'",
                    command,
                ),
            ]
    print(f"median of {args.repeat} runs each; ratio = runner / baseline")
    print(f"{'subject':<34} {'time':>12}   {'baseline':<26} {'time':>12}   {'ratio':>8}")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
