"""Tests for runner.store.base.check_key and runner.store.collect.run_prefix: what a key may be."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from runner.errors import RunnerError, StoreError, UnsafePathError
from runner.store import FileStore, check_key
from runner.store.collect import run_prefix

ROOT = "/srv/runner/store"


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "job.yaml",
        "mnist/r-1/outputs/model.keras",
        "mnist/r-1/outputs/saved_model/variables/variables.index",
        ".hidden",
        "...",
        "a/..b/c..",
        "with space/ü-ñ.txt",
        "~",
        "~/x",
        "a:b",
        "\udcff.bin",  # a non-UTF-8 file name as os.listdir decodes it
    ],
)
def test_check_key_accepts_relative_posix_keys_unchanged(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "it must be relative and use '/'"),
        ("/etc/passwd", "it must be relative and use '/'"),
        ("//server/share", "it must be relative and use '/'"),
        ("a\\b", "it must be relative and use '/'"),
        ("..\\..\\windows", "it must be relative and use '/'"),
        ("C:\\store", "it must be relative and use '/'"),
        ("a\x00b", "it must be relative and use '/'"),
        ("..", "'..', '.' and empty parts are not allowed"),
        ("../x", "'..', '.' and empty parts are not allowed"),
        ("a/../../x", "'..', '.' and empty parts are not allowed"),
        ("a/..", "'..', '.' and empty parts are not allowed"),
        (".", "'..', '.' and empty parts are not allowed"),
        ("./a", "'..', '.' and empty parts are not allowed"),
        ("a/./b", "'..', '.' and empty parts are not allowed"),
        ("a//b", "'..', '.' and empty parts are not allowed"),
        ("a/", "'..', '.' and empty parts are not allowed"),
        ("\ud800", "it cannot be written as a file name"),
    ],
)
def test_check_key_refuses_keys_that_could_leave_their_prefix(key: str, why: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        check_key(key)
    assert str(info.value) == f"refusing unsafe path {key!r}: {why}"
    assert isinstance(info.value, StoreError)
    assert isinstance(info.value, RunnerError)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root and path != root


# Keys assembled from the pieces that matter, so that the dangerous ones come up often.
_PIECES = st.sampled_from(
    ["..", ".", "", "a", "b.txt", "/", "\\", "~", "\x00", " ", "ü", "\udcff", "\ud800", ":", "\n"]
)
_KEYS = st.one_of(
    st.text(),
    st.text(st.characters(exclude_categories=())),  # lone surrogates too
    st.lists(_PIECES, max_size=8).map("".join),
)


@given(_KEYS)
@example("..")
@example("a/../..")
@example("/")
@example("\\..\\..")
def test_check_key_accepts_only_keys_that_stay_under_the_root(key: str) -> None:
    try:
        accepted = check_key(key)
    except UnsafePathError:
        return  # refused, with the one exception check_key may raise
    assert accepted == key
    assert _inside(os.path.normpath(f"{ROOT}/{key}"), ROOT)
    assert not Path(key).is_absolute()
    assert ".." not in Path(key).parts


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store root holding a symlink out of it (evil) and one within it (fine)."""
    root = tmp_path_factory.mktemp("store").resolve()
    outside = tmp_path_factory.mktemp("outside").resolve()
    (root / "evil").symlink_to(outside)
    (root / "inner").mkdir()
    (root / "fine").symlink_to(root / "inner")
    return root


_STORE_KEYS = st.one_of(
    _KEYS, st.lists(st.sampled_from(["evil", "fine", "a", "..", "/", "."]), max_size=6).map("".join)
)


@given(_STORE_KEYS)
@example("evil/x")
@example("fine/../evil/x")
def test_file_store_paths_resolve_under_the_root_or_are_refused(store_root: Path, key: str) -> None:
    store = FileStore(store_root)
    try:
        path = store._path(key)
    except UnsafePathError:
        return
    assert _inside(os.path.realpath(path), str(store_root))
    assert not key.startswith("evil/") and key != "evil"


def test_run_prefix_is_job_then_run_id() -> None:
    assert run_prefix("mnist", "r-20240101-abc") == "mnist/r-20240101-abc"


@pytest.mark.parametrize(
    ("job", "run_id"),
    [("..", "r1"), ("mnist", ".."), ("", "r1"), ("mnist", ""), (".", "r1"), ("a\\b", "r1")],
)
def test_run_prefix_refuses_unsafe_parts(job: str, run_id: str) -> None:
    with pytest.raises(UnsafePathError):
        run_prefix(job, run_id)


@pytest.mark.parametrize(("job", "run_id"), [("a/b", "r1"), ("mnist", "r1/outputs"), ("/abs", "r1")])
def test_run_prefix_refuses_slashes_so_runs_cannot_nest_in_other_runs(job: str, run_id: str) -> None:
    with pytest.raises(UnsafePathError, match="must not contain '/'"):
        run_prefix(job, run_id)
