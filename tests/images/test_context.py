"""Which files of a context go into an image: .dockerignore with '!' exceptions and '**'."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.images.context import IgnoreRules, context_files, copy_context

REPO = Path(__file__).resolve().parents[2]

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    # The project conftest has an autouse, function-scoped fixture; these tests do not use it.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def make_tree(root: Path, files: dict[str, str], ignore: list[str] | None = None) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if ignore is not None:
        (root / ".dockerignore").write_text("\n".join(ignore) + "\n")
    return root


def test_no_dockerignore_lists_every_file_sorted(tmp_path: Path) -> None:
    make_tree(tmp_path, {"b.py": "", "a/z.txt": "", "a/b/c.txt": "", "A.txt": ""})
    (tmp_path / "empty").mkdir()
    assert context_files(tmp_path) == ["A.txt", "a/b/c.txt", "a/z.txt", "b.py"]


def test_patterns_exceptions_and_double_star(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "train.py": "",
            "notes.md": "",
            "README.md": "",
            "data/big.bin": "",
            "data/keep/small.csv": "",
            "pkg/__pycache__/m.pyc": "",
            "pkg/deep/__pycache__/n.pyc": "",
            "pkg/m.py": "",
            "pkg/m.pyc": "",
            "logs/a.log": "",
            "logs/important.log": "",
            "secrets.env": "",
        },
        [
            "# comments and blank lines are skipped",
            "",
            "*.md",
            "!README.md",
            "data",
            "!data/keep/**",
            "**/__pycache__",
            "**/*.pyc",
            "logs/*.log",
            "!logs/important.log",
            "./secrets.env",
        ],
    )
    assert context_files(tmp_path) == [
        ".dockerignore",
        "README.md",
        "data/keep/small.csv",
        "logs/important.log",
        "pkg/m.py",
        "train.py",
    ]


def test_last_matching_pattern_wins(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.txt": "", "b.txt": ""}, ["!a.txt", "*.txt", "!b.txt"])
    assert context_files(tmp_path) == [".dockerignore", "b.txt"]


def test_file_under_an_excluded_directory_comes_back_with_an_exception(tmp_path: Path) -> None:
    """Docker searches an excluded directory when a '!' pattern could re-include something in it."""
    make_tree(
        tmp_path,
        {"build/keep.txt": "", "build/drop.txt": "", "build/sub/x": ""},
        ["build", "!build/keep.txt"],
    )
    assert context_files(tmp_path) == [".dockerignore", "build/keep.txt"]


def test_the_dockerignore_can_exclude_itself(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": ""}, [".dockerignore"])
    assert context_files(tmp_path) == ["a.py"]


def test_symlinks_are_listed_not_followed(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.txt": "", "dir/f": ""})
    context = make_tree(tmp_path / "context", {"real/file.txt": ""})
    (context / "link-to-file").symlink_to(outside / "secret.txt")
    (context / "link-to-dir").symlink_to(outside / "dir")
    (context / "dangling").symlink_to(context / "nowhere")
    assert context_files(context) == ["dangling", "link-to-dir", "link-to-file", "real/file.txt"]


def test_special_files_are_left_out(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": ""})
    os.mkfifo(tmp_path / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"  # AF_UNIX paths are short
        sock.bind(str(short))
        (tmp_path / "sock").symlink_to(short)  # a link to a socket is still a link
        assert context_files(tmp_path) == ["a.py", "sock"]
        short.unlink()


def test_skipped_directories_are_left_out(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "", ".runner-home/runs.db": "", "sub/.runner-home/x": ""})
    assert context_files(tmp_path, skip=[tmp_path / ".runner-home"]) == ["a.py", "sub/.runner-home/x"]


def test_names_that_are_not_utf8_are_listed(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    try:
        (tmp_path / name).write_text("x")
    except (OSError, UnicodeEncodeError):  # pragma: no cover - file systems that refuse such names
        pytest.skip("this file system refuses names that are not UTF-8")
    assert context_files(tmp_path) == [name]


def test_the_example_jobs_context() -> None:
    """jobs/ is the context of every example job; its .dockerignore keeps caches and data out."""
    files = context_files(REPO / "jobs")
    assert "requirements.txt" in files
    assert "mnist/train.py" in files
    assert "ruff.toml" not in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in files if name.split("/")[1:2] == ["data"]]


def test_copy_context_is_unchanged_for_plain_patterns(tmp_path: Path) -> None:
    """Without exceptions below excluded directories, the process backend copies what an image gets."""
    context = make_tree(
        tmp_path / "context",
        {"a.py": "", "pkg/b.py": "", "pkg/__pycache__/b.pyc": "", "out/x": "", "docs/x.md": ""},
        ["**/__pycache__", "out", "*.md", "docs/*.md"],
    )
    copy_context(context, tmp_path / "copy")
    copied = sorted(
        p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file()
    )
    assert copied == context_files(context)


# Property: the listing is exactly the files that IgnoreRules keeps, whatever the patterns.
PARTS = st.sampled_from(["a", "b", "c.py", "d.txt", "__pycache__"])
PATHS = st.lists(PARTS, min_size=1, max_size=4).map("/".join)
PATTERN_PARTS = st.sampled_from(["a", "b", "*", "**", "?", "*.py", "c.py", "__pycache__", "[ab]", "d.*"])
PATTERNS = st.tuples(st.booleans(), st.lists(PATTERN_PARTS, min_size=1, max_size=3).map("/".join)).map(
    lambda pair: ("!" if pair[0] else "") + pair[1]
)


def _parents(path: str) -> set[str]:
    return {"/".join(path.split("/")[:end]) for end in range(1, path.count("/") + 1)}


def _consistent(paths: list[str]) -> dict[str, str]:
    """The paths as files with their names as content, leaving out those that would need a file and a
    directory of the same name."""
    kept: list[str] = []
    for path in paths:
        if path in kept or any(path in _parents(other) or other in _parents(path) for other in kept):
            continue
        kept.append(path)
    return {path: path for path in kept}


@PROPERTY
@given(paths=st.lists(PATHS, min_size=1, max_size=12), patterns=st.lists(PATTERNS, max_size=5))
def test_listing_matches_the_rules(paths: list[str], patterns: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        files = _consistent(paths)
        make_tree(root, files, patterns)
        rules = IgnoreRules(patterns)
        expected = sorted(name for name in [*files, ".dockerignore"] if not rules.excluded(name))
        assert context_files(root) == expected
