"""Requirements resolved on the host, without an engine or the network: the target, the cache, pip's words.

pip download itself is replaced by a fake that writes wheel files, so these tests see what the runner
asks pip for (the base's Python and platforms), how the wheelhouse is cached by requirement set and
target, what progress says, and what an error says and where it points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from runner.images.engine import BuildError
from runner.images.recipe import agent_requirements_text
from runner.images.target import PythonTarget, platform_tags, target_from_probe
from runner.images.wheelhouse import (
    COMPLETE,
    effective_requirements,
    pip_progress,
    wheelhouse_for,
    wheelhouse_key,
)

BOOKWORM = {
    "version": "3.11",
    "implementation": "cpython",
    "machine": "x86_64",
    "libc": "glibc 2.36",
    "musl": False,
}


def test_the_target_of_a_debian_python() -> None:
    target = target_from_probe(BOOKWORM)
    assert (target.version, target.implementation, target.abi) == ("3.11", "cp", "cp311")
    assert target.platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux2014_x86_64" in target.platforms and "manylinux1_x86_64" in target.platforms
    assert target.platforms[-1] == "manylinux1_x86_64", "most specific first"
    options = target.pip_options()
    assert options[:7] == [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    assert options.count("--platform") == len(target.platforms)


def test_platforms_for_arm_musl_and_an_unknown_libc() -> None:
    assert platform_tags("aarch64", "glibc 2.31", False)[:2] == (
        "manylinux_2_31_aarch64",
        "manylinux_2_30_aarch64",
    )
    assert "manylinux2014_aarch64" in platform_tags("aarch64", "glibc 2.31", False)
    assert platform_tags("x86_64", "", True) == (
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    )
    assert platform_tags("x86_64", "", False)[0] == "manylinux_2_17_x86_64", (
        "glibc unknown: the manylinux2014 floor"
    )


def test_the_key_is_the_requirement_set_and_the_target() -> None:
    target = target_from_probe(BOOKWORM)
    other = target_from_probe({**BOOKWORM, "version": "3.12"})
    key = wheelhouse_key("numpy\nscipy>=1\n", target)
    assert key == wheelhouse_key("# pinned\nnumpy  # ok\n\nscipy>=1", target), (
        "comments and blanks do not count"
    )
    assert key != wheelhouse_key("numpy\nscipy>=2\n", target)
    assert key != wheelhouse_key("numpy\nscipy>=1\n", other)
    assert effective_requirements("# x\n\na==1  # y\n") == ["a==1"]
    assert agent_requirements_text(["boto3>=1.36"]) == "pip\nboto3>=1.36\n"


def test_pip_lines_in_plain_words() -> None:
    assert pip_progress("  Downloading numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl (16.9 MB)\n") == (
        "  downloading numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl (16.9 MB)"
    )
    assert pip_progress("Downloading https://files.example/p/six-1.17.0-py2.py3-none-any.whl (11 kB)") == (
        "  downloading six-1.17.0-py2.py3-none-any.whl (11 kB)"
    )
    assert pip_progress("Collecting numpy") is None
    assert pip_progress("Saved ./numpy.whl") is None


class FakePip:
    """Stands in for pip download: writes the wheels it is told to, or fails with pip's own words."""

    def __init__(self, wheels: dict[str, int], output: str = "", code: int = 0) -> None:
        self.wheels = wheels
        self.output = output
        self.code = code
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], log: Path, progress: object) -> int:
        self.calls.append(list(argv))
        dest = Path(argv[argv.index("--dest") + 1])
        for name, size in self.wheels.items():
            (dest / name).write_bytes(b"w" * size)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(self.output)
        for line in self.output.splitlines():
            said = pip_progress(line)
            if said and callable(progress):
                progress(said)
        return self.code


def test_a_wheelhouse_is_downloaded_once_and_then_found_in_the_cache(tmp_path: Path) -> None:
    target: PythonTarget = target_from_probe(BOOKWORM)
    fake = FakePip(
        {"a-1-py3-none-any.whl": 1000, "b-2-py3-none-any.whl": 24},
        "Downloading a-1-py3-none-any.whl (1 kB)\n",
    )
    said: list[str] = []
    first = wheelhouse_for(
        "a\n",
        target,
        tmp_path / "cache",
        what="the job's requirements",
        progress=said.append,
        log=tmp_path / "log",
        run=fake,
    )
    assert first.downloaded and first.wheels == ("a-1-py3-none-any.whl", "b-2-py3-none-any.whl")
    assert first.size == 1024 and (first.path / COMPLETE).is_file()
    assert first.path.name == wheelhouse_key("a\n", target)
    argv = fake.calls[0]
    assert argv[1:4] == ["-m", "pip", "download"] and "--only-binary=:all:" in argv
    assert argv[argv.index("--python-version") + 1] == "3.11" and "manylinux_2_36_x86_64" in argv
    resolving = "resolving the job's requirements on this machine for Python 3.11 (manylinux_2_36_x86_64)"
    assert said[0] == resolving + " (pip download)"
    assert "  downloading a-1-py3-none-any.whl (1 kB)" in said
    assert said[-1].startswith("the job's requirements: 2 wheels, 1.0 KiB, resolved in ")
    again = wheelhouse_for(
        "a  # same set\n",
        target,
        tmp_path / "cache",
        what="x",
        progress=said.append,
        log=tmp_path / "log",
        run=fake,
    )
    assert not again.downloaded and again.path == first.path and len(fake.calls) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.path.name], (
        "no temporary directories left"
    )


def test_no_requirement_lines_download_nothing(tmp_path: Path) -> None:
    fake = FakePip({})
    empty = wheelhouse_for(
        "# nothing\n",
        target_from_probe(BOOKWORM),
        tmp_path,
        what="x",
        progress=print,
        log=tmp_path / "l",
        run=fake,
    )
    assert empty.wheels == () and fake.calls == []


@pytest.mark.parametrize(
    ("output", "hint"),
    [
        ("ERROR: No matching distribution found for nosuch==9\n", "has no binary wheel for Python 3.11"),
        ("WARNING: Retrying ... SSLError(...)\nERROR: Could not fetch\n", "cannot reach the package index"),
        ("ERROR: Invalid requirement: 'a b'\n", "check the requirements"),
    ],
)
def test_a_failed_download_says_why_and_points_at_its_log(tmp_path: Path, output: str, hint: str) -> None:
    fake = FakePip({}, output, code=1)
    log = tmp_path / "builds" / "job-download.log"
    with pytest.raises(BuildError) as caught:
        wheelhouse_for(
            "nosuch==9\n",
            target_from_probe(BOOKWORM),
            tmp_path / "cache",
            what="the job's requirements",
            progress=lambda _: None,
            log=log,
            run=fake,
        )
    assert caught.value.message.startswith("resolving the job's requirements for Python 3.11 ")
    assert f"full log: {log}" in caught.value.message
    assert caught.value.hint is not None and hint in caught.value.hint
    assert not any(p.name.endswith(COMPLETE) for p in (tmp_path / "cache").rglob("*")), (
        "nothing half-made is kept"
    )
