"""Inputs in the store: s3:// URLs parsed, local directories uploaded under their content address once,
prefixes fetched and verified (runner.store.inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import StoreError
from runner.store.base import Digest
from runner.store.file import FileStore
from runner.store.inputs import (
    INDEX,
    InputError,
    check_fetched,
    fetch_prefix,
    parse_s3,
    tree_digest,
    upload_tree,
)


def test_an_s3_url_is_a_store_and_the_key_of_its_last_part() -> None:
    parsed = parse_s3("s3://data/sets/cells/")
    assert (parsed.store_url, parsed.key) == ("s3://data/sets", "cells")
    parsed = parse_s3("s3://data/cells")
    assert (parsed.store_url, parsed.key) == ("s3://data", "cells")


@pytest.mark.parametrize("url", ["s3://data", "s3://data/", "s3:///x", "s3://data/a/../b"])
def test_an_s3_url_without_a_prefix_or_with_dot_parts_is_refused(url: str) -> None:
    with pytest.raises(InputError):
        parse_s3(url)


def test_the_tree_digest_depends_on_paths_sizes_and_contents_not_on_order() -> None:
    a = [("a.txt", 1, "x"), ("b/c.txt", 2, "y")]
    assert tree_digest(a) == tree_digest(reversed(a))
    assert tree_digest(a) != tree_digest([("a.txt", 1, "x"), ("b/c.txt", 2, "z")])
    assert tree_digest(a) != tree_digest([("A.txt", 1, "x"), ("b/c.txt", 2, "y")])


def cells(root: Path) -> Path:
    (root / "cells" / "sub").mkdir(parents=True)
    (root / "cells" / "one.png").write_bytes(b"1" * 100)
    (root / "cells" / "sub" / "two.png").write_bytes(b"2" * 50)
    return root / "cells"


def test_a_directory_is_uploaded_once_under_its_content_address_and_fetched_back(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    source = cells(tmp_path)
    said: list[str] = []
    key, uploaded = upload_tree(store, source, said.append)
    assert uploaded and key.startswith("inputs/sha256-")
    assert store.exists(f"{key}/{INDEX}") and store.exists(f"{key}/sub/two.png")
    assert any("uploading 2 file(s)" in line for line in said)

    said.clear()
    again, uploaded = upload_tree(store, source, said.append)
    assert (again, uploaded) == (key, False)
    assert "already in the store" in said[0]

    fetched = tmp_path / "fetched"
    assert fetch_prefix(store, key, fetched, "input 'cells'", said.append) == 150
    assert (fetched / "one.png").read_bytes() == b"1" * 100
    assert (fetched / "sub" / "two.png").read_bytes() == b"2" * 50
    assert not (fetched / INDEX).exists()


def test_changed_contents_are_a_new_address(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    source = cells(tmp_path)
    key, _ = upload_tree(store, source, lambda _: None)
    (source / "one.png").write_bytes(b"changed")
    other, uploaded = upload_tree(store, source, lambda _: None)
    assert uploaded and other != key


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no files"):
        upload_tree(FileStore(tmp_path / "store"), tmp_path / "empty", lambda _: None)


def test_an_empty_prefix_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no objects") as raised:
        fetch_prefix(FileStore(tmp_path / "store"), "nothing", tmp_path / "out", "input 'x'", lambda _: None)
    assert raised.value.exit_code == 2 and raised.value.hint


def test_a_file_that_differs_from_the_index_fails_the_fetch(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    key, _ = upload_tree(store, cells(tmp_path), lambda _: None)
    store.put_bytes(f"{key}/one.png", b"x" * 100)  # same size, other bytes
    with pytest.raises(StoreError, match=r"one\.png: its size or sha256 differs"):
        fetch_prefix(store, key, tmp_path / "out", "input 'cells'", lambda _: None)


def test_check_fetched_compares_listed_sizes_and_the_index() -> None:
    got = Digest(3, "abc")
    assert check_fetched("f", got, 3, None) is None
    assert check_fetched("f", got, 4, None) == "f: fetched 3 bytes, the store listed 4"
    assert check_fetched("f", got, 3, {"size": 3, "sha256": "abc"}) is None
    assert check_fetched("f", got, 3, {"size": 3, "sha256": "abd"}) is not None
