"""Image tags: the same content gives the same tag anywhere; any change to what goes in changes it."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import RunnerError, UserError
from runner.images.hashing import TAG_LENGTH, content_digest, image_reference, image_tag
from runner.images.recipe import BuildRecipe, build_recipe
from runner.spec.model import JobManifest

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    # The project conftest has an autouse, function-scoped fixture; these tests do not use it.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
VERSION = "0.1.0"


def manifest(command: list[str] | None = None, **image: Any) -> JobManifest:
    return JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo"},
            "spec": {"image": image, "command": command or ["python", "train.py"]},
        }
    )


def write(root: Path, files: dict[str, bytes], order: list[str] | None = None) -> Path:
    for name in order or list(files):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    return root


def tag_of(context: Path, job: JobManifest | None = None, version: str = VERSION) -> str:
    recipe = build_recipe(job or manifest(), context, runner_version=version)
    return image_tag(recipe, context, version)


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


# File trees: names from a small alphabet so that directories nest and share prefixes.
NAMES = st.lists(st.sampled_from(["a", "b", "src", "x.py", "data.bin", "é"]), min_size=1, max_size=3).map(
    "/".join
)
TREES = (
    st.dictionaries(NAMES, st.binary(max_size=64), min_size=1, max_size=8)
    .map(
        lambda files: {
            name: content
            for name, content in files.items()
            if not any(other.startswith(name + "/") or name.startswith(other + "/") for other in files)
        }
    )
    .filter(bool)
)


def test_tag_shape_and_digest() -> None:
    with scratch() as root:
        write(root, {"train.py": b"print(1)\n"})
        recipe = build_recipe(manifest(), root, runner_version=VERSION)
        tag = image_tag(recipe, root, VERSION)
        digest = content_digest(recipe, root, VERSION)
    assert len(digest) == 64 and digest.startswith(tag)
    assert len(tag) == TAG_LENGTH and all(char in "0123456789abcdef" for char in tag)


@PROPERTY
@given(files=TREES, seed=st.integers(0, 2**32), mtimes=st.integers(0, 2**31))
def test_same_content_same_tag_wherever_and_however_written(
    files: dict[str, bytes], seed: int, mtimes: int
) -> None:
    """Creation order, modification times and the context's absolute location do not count."""
    order = list(files)
    random.Random(seed).shuffle(order)
    with scratch() as one, scratch() as two:
        first = write(one / "context", files)
        second = write(two / "deeper" / "elsewhere", files, order)
        for path in second.rglob("*"):
            os.utime(path, (mtimes, mtimes), follow_symlinks=False)
        assert tag_of(first) == tag_of(second)
        # Moving the directory keeps the tag too.
        moved = one / "moved"
        first.rename(moved)
        assert tag_of(moved) == tag_of(second)


@PROPERTY
@given(files=TREES, data=st.data())
def test_any_change_to_a_kept_file_changes_the_tag(files: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(files)))
    change = data.draw(
        st.sampled_from(["content", "append", "executable", "remove", "rename", "add", "symlink"])
    )
    with scratch() as root:
        context = write(root / "c", files)
        before = tag_of(context)
        path = context / name
        if change == "content":
            path.write_bytes(files[name] + b"\0" if files[name] else b"x")
        elif change == "append":
            with path.open("ab") as handle:
                handle.write(b"\n")
        elif change == "executable":
            path.chmod(0o755)
        elif change == "remove":
            path.unlink()
        elif change == "rename":
            path.rename(path.with_name(path.name + ".moved"))
        elif change == "add":
            (path.parent / (path.name + ".new")).write_bytes(b"")
        else:
            path.unlink()
            path.symlink_to("target")
        assert tag_of(context) != before, change


@PROPERTY
@given(files=TREES, ignored=st.binary(max_size=64))
def test_ignored_files_do_not_count(files: dict[str, bytes], ignored: bytes) -> None:
    with scratch() as root:
        context = write(root / "c", {**files, ".dockerignore": b"**/*.log\ncache/\n!keep.log\n"})
        before = tag_of(context)
        write(context, {"run.log": ignored, "cache/big.bin": ignored, "nested/deep.log": ignored})
        (context / "run.log").chmod(0o755)
        assert tag_of(context) == before
        write(context, {"keep.log": ignored})  # an exception is kept, so it counts
        assert tag_of(context) != before


def test_only_the_executable_bit_of_the_mode_counts() -> None:
    with scratch() as root:
        context = write(root / "c", {"run.sh": b"#!/bin/sh\n"})
        (context / "run.sh").chmod(0o644)
        plain = tag_of(context)
        (context / "run.sh").chmod(0o600)
        assert tag_of(context) == plain
        (context / "run.sh").chmod(0o744)
        executable = tag_of(context)
        assert executable != plain
        (context / "run.sh").chmod(0o755)
        assert tag_of(context) == executable


def test_symlinks_count_by_target_not_by_what_they_point_to() -> None:
    with scratch() as root:
        context = write(root / "c", {"a.txt": b"one"})
        (context / "link").symlink_to("a.txt")
        before = tag_of(context)
        (context / "a.txt").write_bytes(b"two")
        after = tag_of(context)
        assert after != before  # a.txt changed
        (context / "link").unlink()
        (context / "link").symlink_to("b.txt")
        assert tag_of(context) != after
        (context / "link").unlink()
        (context / "link").write_bytes(b"a.txt")  # a file holding the target's text is not the link
        assert tag_of(context) != after


def _variant(name: str) -> tuple[JobManifest, str, Callable[[Path], object]]:
    """A change to one input other than the context's files: (manifest, runner version, edit)."""
    base: dict[str, Any] = {"requirements": "requirements.txt", "apt": ["git"]}
    nothing: Callable[[Path], object] = lambda _context: None  # noqa: E731
    variants: dict[str, tuple[JobManifest, str, Callable[[Path], object]]] = {
        "same": (manifest(**base), VERSION, nothing),
        "base": (manifest(**base, base="tensorflow/tensorflow:2.20.0-gpu"), VERSION, nothing),
        "apt": (manifest(requirements="requirements.txt", apt=["git", "curl"]), VERSION, nothing),
        "no-apt": (manifest(requirements="requirements.txt"), VERSION, nothing),
        "requirements-list": (manifest(requirements=["numpy"], apt=["git"]), VERSION, nothing),
        "requirements-file": (
            manifest(requirements="other.txt", apt=["git"]),
            VERSION,
            lambda context: (context / "other.txt").write_text("numpy\n"),
        ),
        "requirements-text": (
            manifest(**base),
            VERSION,
            lambda context: (context / "requirements.txt").write_text("numpy==2.0\n"),
        ),
        "command": (manifest(["python", "train.py", "--fast"], **base), VERSION, nothing),
        "runner": (manifest(**base), "0.1.1", nothing),
        "wheelhouse": (manifest(**base), VERSION, lambda context: (context / "wheelhouse").mkdir()),
    }
    return variants[name]


def test_every_recipe_input_changes_the_tag() -> None:
    tags: dict[str, str] = {}
    names = [
        "same",
        "base",
        "apt",
        "no-apt",
        "requirements-list",
        "requirements-file",
        "requirements-text",
        "command",
        "runner",
        "wheelhouse",
    ]
    for name in names:
        job, version, edit = _variant(name)
        with scratch() as root:
            context = write(root / "c", {"requirements.txt": b"numpy\n", "train.py": b""})
            edit(context)
            tags[name] = tag_of(context, job, version)
    assert len(set(tags.values())) == len(names), tags


def test_apt_order_does_not_change_the_tag() -> None:
    with scratch() as root:
        context = write(root / "c", {"train.py": b""})
        assert tag_of(context, manifest(apt=["git", "curl"])) == tag_of(
            context, manifest(apt=["curl", "git", "git"])
        )


def test_fields_are_framed() -> None:
    """Moving bytes from one file to another, or from a name into content, changes the tag."""
    with scratch() as one, scratch() as two, scratch() as three:
        a = write(one, {"ab": b"c", "d": b""})
        b = write(two, {"ab": b"", "d": b"c"})
        c = write(three, {"a": b"bc", "d": b""})
        assert len({tag_of(a), tag_of(b), tag_of(c)}) == 3


def test_big_files_are_streamed() -> None:
    with scratch() as root:
        context = root / "c"
        context.mkdir()
        with (context / "big.bin").open("wb") as handle:
            for _ in range(20):
                handle.write(b"\1" * (1 << 20))
        before = tag_of(context)
        with (context / "big.bin").open("r+b") as handle:
            handle.seek(15 << 20)
            handle.write(b"\2")
        assert tag_of(context) != before


def test_a_file_that_goes_away_is_reported() -> None:
    with scratch() as root:
        context = write(root / "c", {"a.py": b"", "b.py": b""})
        recipe = build_recipe(manifest(), context, runner_version=VERSION)
        (context / "b.py").unlink()
        with pytest.raises(RunnerError, match=r"b\.py is gone"):
            image_tag(recipe, context, VERSION)


def test_an_unreadable_file_is_reported() -> None:
    """Hashed as an unprivileged user: the suite usually runs as root, who reads every file."""
    with scratch() as root:
        root.chmod(0o755)
        context = write(root / "c", {"secret.py": b""})
        recipe = build_recipe(manifest(), context, runner_version=VERSION)
        (context / "secret.py").chmod(0)
        was_root = os.geteuid() == 0
        if was_root:
            os.seteuid(65534)
        try:
            with pytest.raises(UserError, match="permission denied"):
                image_tag(recipe, context, VERSION)
        finally:
            if was_root:
                os.seteuid(0)


def test_a_file_that_became_a_fifo_is_reported_not_waited_on() -> None:
    with scratch() as root:
        context = write(root / "c", {"a.py": b""})
        recipe = build_recipe(manifest(), context, runner_version=VERSION)
        (context / "a.py").unlink()
        os.mkfifo(context / "a.py")
        with pytest.raises(RunnerError, match="no longer a file"):
            image_tag(recipe, context, VERSION)


def test_the_recipe_decides_which_files_count() -> None:
    """The tag covers the recipe's files as listed, so a file added after the recipe waits for the next."""
    with scratch() as root:
        context = write(root / "c", {"a.py": b""})
        recipe: BuildRecipe = build_recipe(manifest(), context, runner_version=VERSION)
        before = image_tag(recipe, context, VERSION)
        write(context, {"b.py": b""})
        assert image_tag(recipe, context, VERSION) == before


# References.


def test_image_reference() -> None:
    tag = "0123456789abcdef0123"
    assert image_reference("127.0.0.1:5000", "mnist", tag) == f"127.0.0.1:5000/runner/mnist:{tag}"
    assert image_reference("registry.example.com/team/", "mnist", tag) == (
        f"registry.example.com/team/runner/mnist:{tag}"
    )
    assert image_reference("", "mnist", tag) == f"runner/mnist:{tag}"
    assert (
        image_reference("localhost:5000", "mnist", tag, namespace="jobs")
        == f"localhost:5000/jobs/mnist:{tag}"
    )


@pytest.mark.parametrize(
    ("registry", "job", "tag", "error", "message"),
    [
        ("http://127.0.0.1:5000", "mnist", "abc", UserError, "without a scheme"),
        ("127.0.0.1:5000/Team", "mnist", "abc", UserError, "not a registry address"),
        ("host:port", "mnist", "abc", UserError, "not a registry address"),
        ("127.0.0.1:5000", "MNIST", "abc", UserError, "job name"),
        ("127.0.0.1:5000", "mnist", "a:b", ValueError, "tag"),
        ("127.0.0.1:5000", "mnist", "x" * 129, ValueError, "tag"),
        ("127.0.0.1:5000", "mnist", ".abc", ValueError, "tag"),
    ],
)
def test_bad_references_are_refused(
    registry: str, job: str, tag: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        image_reference(registry, job, tag)
