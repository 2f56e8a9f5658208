"""Which files of a context go into an image: .dockerignore with '!' exceptions and '**'."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.images.context import (
    ContextError,
    IgnoreRules,
    context_files,
    copy_context,
    copy_scanned,
    scan_context,
)

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


def test_special_files_are_refused_by_name(tmp_path: Path) -> None:
    """Issue 11 (12, 15): a FIFO, socket or device that would go in is refused, naming it; reading one
    would hang or never end. A link to one is still a link, and one .dockerignore leaves out is fine."""
    make_tree(tmp_path, {"a.py": ""}, ["ignored-pipe"])
    os.mkfifo(tmp_path / "ignored-pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"  # AF_UNIX paths are short
        sock.bind(str(short))
        (tmp_path / "sock").symlink_to(short)
        assert context_files(tmp_path) == [".dockerignore", "a.py", "sock"]
        short.unlink()
    os.mkfifo(tmp_path / "sub-pipe")
    with pytest.raises(ContextError) as refused:
        context_files(tmp_path)
    assert f"{tmp_path / 'sub-pipe'} is a FIFO (named pipe)" in refused.value.message
    assert refused.value.exit_code == 2
    assert "sub-pipe" in (refused.value.hint or "")
    with pytest.raises(ContextError, match="FIFO"):
        copy_context(tmp_path, tmp_path.parent / "copy")
    assert not (tmp_path.parent / "copy").exists()


def test_a_device_in_the_context_is_refused_not_read(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": ""})
    try:
        os.mknod(tmp_path / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    with pytest.raises(ContextError, match=r"zero is a character device"):
        copy_context(tmp_path, tmp_path.parent / "copy")
    assert not (tmp_path.parent / "copy").exists()


def test_the_context_size_is_capped_after_the_dockerignore(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "x" * 100, "data/big.bin": ""})
    with (tmp_path / "data/big.bin").open("wb") as sparse:
        sparse.truncate(3 * 2**30)  # sparse: counted by the size reading it would give
    with pytest.raises(ContextError) as refused:
        context_files(tmp_path)
    assert "holds more than 2.0 GiB (RUNNER_MAX_CONTEXT)" in refused.value.message
    assert "data/big.bin (3.0 GiB)" in refused.value.message
    assert ".dockerignore" in (refused.value.hint or "")
    with pytest.raises(ContextError, match="holds more than 50 B"):
        context_files(tmp_path / "data", limit=50)
    (tmp_path / ".dockerignore").write_text("data\n")
    assert context_files(tmp_path, limit=1000) == [".dockerignore", "a.py"]
    with pytest.raises(ContextError, match="more than 100 B"):
        context_files(tmp_path, limit=100)  # .dockerignore (5 B) and a.py (100 B)


def test_the_cap_comes_from_runner_max_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"a.bin": "x" * 2048})
    monkeypatch.setenv("RUNNER_MAX_CONTEXT", "1Ki")
    with pytest.raises(ContextError, match=r"more than 1\.0 KiB"):
        context_files(tmp_path)
    monkeypatch.setenv("RUNNER_MAX_CONTEXT", "none")
    assert context_files(tmp_path) == ["a.bin"]


def test_the_root_directory_is_refused_at_once() -> None:
    """`context: /` walked nothing but stopped at its first device or at the cap, never reading a file."""
    with pytest.raises(ContextError):
        scan_context(Path("/"), limit=2**30)


def test_a_copied_file_that_became_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "context", {"a.py": "print(1)", "b.py": ""})
    entries = scan_context(context)
    (context / "b.py").unlink()
    os.mkfifo(context / "b.py")
    with pytest.raises(ContextError, match=r"b\.py is a FIFO"):
        copy_scanned(context, entries, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_copied_file_that_grew_past_the_cap_is_refused(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "context", {"a.py": "x" * 10})
    entries = scan_context(context, limit=20)
    (context / "a.py").write_text("x" * 30)
    with pytest.raises(ContextError, match="grew while being copied"):
        copy_scanned(context, entries, tmp_path / "copy", limit=20)
    assert not (tmp_path / "copy").exists()


def test_the_copy_keeps_modes_links_and_empty_directories(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "context", {"run.sh": "#!/bin/sh\n", "pkg/m.py": ""})
    (context / "run.sh").chmod(0o755)
    (context / "empty").mkdir()
    (context / "link").symlink_to("pkg/m.py")
    (context / "pkg").chmod(0o555)
    try:
        copy_context(context, tmp_path / "copy")
    finally:
        (context / "pkg").chmod(0o755)
    copy = tmp_path / "copy"
    assert stat.S_IMODE((copy / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((copy / "pkg").stat().st_mode) == 0o555
    assert (copy / "empty").is_dir()
    assert (copy / "link").readlink() == Path("pkg/m.py")
    (copy / "pkg").chmod(0o755)


def test_the_tar_stream_refuses_a_file_that_became_a_fifo_or_grew_past_the_cap(tmp_path: Path) -> None:
    from runner.images.recipe import build_recipe
    from runner.images.tarstream import ContextStream, StreamAborted
    from runner.spec.model import JobManifest

    manifest = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo"},
            "spec": {"command": ["true"]},
        }
    )
    context = make_tree(tmp_path / "context", {"a.py": "x" * 10, "b.py": ""})
    wheel = tmp_path / "runner.whl"
    wheel.write_bytes(b"wheel")
    recipe = build_recipe(manifest, context, runner_version="0.1.0")
    (context / "a.py").write_text("x" * 4096)
    stream = ContextStream(recipe, context, wheel, limit=1024)
    with pytest.raises(StreamAborted):
        b"".join(stream)
    assert isinstance(stream.error, ContextError)
    assert "RUNNER_MAX_CONTEXT" in stream.error.message
    (context / "b.py").unlink()
    os.mkfifo(context / "b.py")
    stream = ContextStream(recipe, context, wheel)
    with pytest.raises(StreamAborted):
        b"".join(stream)
    assert stream.error is not None and "b.py" in stream.error.message
    assert "no longer a regular file" in stream.error.message


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
