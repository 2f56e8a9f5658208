"""The job's Dockerfile and build recipe: golden files for representative manifests, and the rules.

Golden files live in tests/images/golden/. When a change to the template is intended, rewrite them
with ``RUNNER_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/images`` and review the diff.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import UserError
from runner.images.recipe import (
    AGENT_DIR,
    AGENT_REQUIREMENTS,
    BuildRecipe,
    agent_requirements_text,
    build_recipe,
    fill,
    render_dockerfile,
    runner_wheel_path,
)
from runner.spec import load_manifest
from runner.spec.model import Image, JobManifest
from tests.support import golden

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden"
WHEEL = runner_wheel_path("0.1.0")

INSTRUCTIONS = {"FROM", "ARG", "USER", "RUN", "COPY", "ENV", "WORKDIR", "ENTRYPOINT", "CMD"}


def check_golden(name: str, text: str) -> None:
    golden.check_golden(GOLDEN, name, text)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, arguments = whole.strip().partition(" ")
        out.append((keyword, arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def check_structure(dockerfile: str, base: str, command: list[str], *, wheelhouse: bool) -> None:
    """What every rendered Dockerfile must hold, whatever the manifest."""
    assert "{{" not in dockerfile and "}}" not in dockerfile
    steps = instructions(dockerfile)
    assert {keyword for keyword, _ in steps} <= INSTRUCTIONS
    assert steps[0] == ("FROM", base)
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, "numeric, non-root"
    entrypoint = [arguments for keyword, arguments in steps if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["/opt/runner/bin/python", "-I", "-m", "runner.agent", "--"]']
    cmd = [arguments for keyword, arguments in steps if keyword == "CMD"]
    assert len(cmd) == 1 and json.loads(cmd[0]) == command
    assert ("ENV", "PYTHONUNBUFFERED=1") in steps
    assert ("WORKDIR", "/job") in steps
    assert steps[-3:][0] == ("USER", users[-1]), "the job runs as the last USER"
    copies = [arguments for keyword, arguments in steps if keyword == "COPY"]
    assert copies[-1] == "--chown=1000:1000 job/ /job/", "the job's files go in last"
    pips = [arguments for keyword, arguments in steps if keyword == "RUN" and "pip install" in arguments]
    assert pips, "the runner is installed with pip"
    assert "--no-deps --no-index" in pips[-1] and WHEEL.rsplit("/", 1)[1] in pips[-1]
    agent_pip = "/opt/runner/bin/python /opt/runner/pip.whl/pip install"
    assert agent_pip in pips[-1] and "--target /opt/runner/runner-lib" in pips[-1], "the agent's pip"
    assert all("--no-index" in command for command in pips), "every install is offline"
    assert any("python -m venv --without-pip /opt/runner" in command for command in pips)
    assert ".runner/agent/ /tmp/runner-build/agent/" in copies, "the agent's wheels, resolved on the host"
    job_installs = [command for command in pips if "-r /tmp/runner-build/requirements.txt" in command]
    wheels_copied = ".runner/wheelhouse/ /tmp/runner-build/wheelhouse/" in copies
    assert wheels_copied == bool(job_installs), "the job's wheels come in exactly when it has requirements"
    assert all("--find-links /tmp/runner-build/wheelhouse" in command for command in job_installs)
    assert copies.index(".runner/agent/ /tmp/runner-build/agent/") < len(copies) - 2, (
        "the agent before the code"
    )
    for keyword, arguments in steps:
        if keyword == "RUN" and "apt-get install" in arguments:
            assert "--no-install-recommends" in arguments
            assert "rm -rf /var/lib/apt/lists/*" in arguments


CASES: dict[str, dict[str, Any]] = {
    "defaults": {"image": {}, "command": ["python", "train.py"], "wheelhouse": False},
    "requirements-file": {
        "image": {"requirements": "requirements.txt"},
        "command": ["python", "-m", "mnist.train", "--epochs", "5"],
        "wheelhouse": False,
    },
    "list-and-apt": {
        "image": {
            "base": "nvcr.io/nvidia/tensorflow:24.03-tf2-py3",
            "requirements": [
                "scikit-learn>=1.4",
                "pandas==2.2.2",
                "--extra-index-url https://example.org/simple",
            ],
            "apt": ["libgl1", "git", "curl", "git"],
        },
        "command": ["bash", "-c", 'echo "$HOME" && python train.py'],
        "wheelhouse": False,
        "outputs": "/results/run one",
    },
    "air-gapped": {
        "image": {
            "base": "registry.local:5000/tf@sha256:" + "0" * 64,
            "requirements": "requirements.txt",
            "apt": ["libgomp1"],
        },
        "command": ["python", "train.py", "--name", "caf\u00e9", "--note", "tab\there"],
        "wheelhouse": True,
    },
    "air-gapped-no-requirements": {"image": {}, "command": ["python", "run.py"], "wheelhouse": True},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    spec = CASES[case]
    image = Image.model_validate(spec["image"])
    text = render_dockerfile(
        image,
        spec["command"],
        runner_wheel=WHEEL,
        wheelhouse=spec["wheelhouse"],
        outputs=spec.get("outputs", "/outputs"),
    )
    check_structure(text, image.base, spec["command"], wheelhouse=spec["wheelhouse"])
    check_golden(f"{case}.Dockerfile", text)


def test_golden_mnist_example() -> None:
    """The real example job: jobs/mnist/job.yaml with its context jobs/."""
    loaded = load_manifest(REPO / "jobs" / "mnist" / "job.yaml")
    context = (loaded.base_dir / loaded.manifest.spec.image.context).resolve()
    recipe = build_recipe(loaded.manifest, context, runner_version="0.1.0")
    check_structure(recipe.dockerfile, recipe.base, list(recipe.command), wheelhouse=False)
    assert recipe.requirements == "requirements.txt"
    assert recipe.requirements_text == (context / "requirements.txt").read_text()
    check_golden("mnist.Dockerfile", recipe.dockerfile)


def test_no_golden_file_is_left_over() -> None:
    expected = {f"{case}.Dockerfile" for case in CASES} | {"mnist.Dockerfile"}
    assert {path.name for path in GOLDEN.iterdir()} == expected


def test_missing_golden_file_fails_without_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_REGENERATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="RUNNER_REGENERATE_GOLDEN=1"):
        check_golden("no-such-case.Dockerfile", "FROM x\n")
    assert not (GOLDEN / "no-such-case.Dockerfile").exists()


def test_requirements_go_in_before_the_code_and_after_apt() -> None:
    text = render_dockerfile(
        Image(requirements=["numpy"], apt=["git"]), ["python"], runner_wheel=WHEEL, wheelhouse=False
    )
    apt = text.index("apt-get install")
    requirements = text.index("-r /tmp/runner-build/requirements.txt")
    runner = text.index("--no-deps --no-index")
    code = text.index("COPY --chown=1000:1000 job/")
    assert apt < requirements < runner < code


def test_rendering_is_pure() -> None:
    image = Image(requirements=["numpy"], apt=["git"])
    first = render_dockerfile(image, ["python", "x.py"], runner_wheel=WHEEL, wheelhouse=True)
    assert first == render_dockerfile(image, ["python", "x.py"], runner_wheel=WHEEL, wheelhouse=True)
    assert first != render_dockerfile(image, ["python", "x.py"], runner_wheel=WHEEL, wheelhouse=False)


def test_apt_order_and_repeats_do_not_matter() -> None:
    one = render_dockerfile(Image(apt=["git", "curl"]), ["x"], runner_wheel=WHEEL, wheelhouse=False)
    two = render_dockerfile(Image(apt=["curl", "git", "curl"]), ["x"], runner_wheel=WHEEL, wheelhouse=False)
    assert one == two


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.lists(st.text(min_size=1), min_size=1, max_size=6))
def test_any_command_becomes_one_json_cmd(command: list[str]) -> None:
    """Newlines, quotes, backslashes and '$' in arguments stay inside one CMD line, as data."""
    text = render_dockerfile(Image(), command, runner_wheel=WHEEL, wheelhouse=False)
    lines = [line for line in text.splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1
    assert json.loads(lines[0][4:]) == command
    assert text.endswith(lines[0] + "\n")


def test_outputs_path_is_made_and_owned() -> None:
    text = render_dockerfile(Image(), ["x"], runner_wheel=WHEEL, wheelhouse=False, outputs="/srv/out")
    assert "mkdir -p /job /srv/out;" in text
    assert "chown 1000:1000 /job /srv/out" in text


def test_the_agent_gets_its_own_environment_with_boto3_offline() -> None:
    assert any(item.startswith("boto3") for item in AGENT_REQUIREMENTS)
    assert agent_requirements_text(["boto3>=1.34"]) == "pip\nboto3>=1.34\n", "pip's wheel installs them"
    for wheelhouse in (False, True):
        text = render_dockerfile(
            Image(), ["x"], runner_wheel=WHEEL, wheelhouse=wheelhouse, agent_requirements=["boto3>=1.34"]
        )
        assert "python -m venv --without-pip /opt/runner;" in text
        assert "--no-index --find-links /tmp/runner-build/agent" in text
        assert "'boto3>=1.34'" in text
        assert "pip install 'boto3" not in text.replace("--quiet ", ""), "never the base's pip"
    with pytest.raises(ValueError, match="plain pip requirement"):
        render_dockerfile(Image(), ["x"], runner_wheel=WHEEL, wheelhouse=False, agent_requirements=["a; rm"])


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"base": "ubuntu$HOME"}, r"spec\.image\.base: 'ubuntu\$HOME' is not an image reference"),
        ({"base": "tf\\"}, "is not an image reference"),
        ({"apt": ["curl", "git;rm"]}, r"spec\.image\.apt\[1\]: 'git;rm' is not a Debian package name"),
        ({"apt": ["-y"]}, "is not a Debian package name"),
        ({"requirements": ["numpy", "a\nb"]}, r"spec\.image\.requirements\[1\]"),
        ({"requirements": ["numpy", " "]}, r"spec\.image\.requirements\[1\]"),
        ({"requirements": ["-r other.txt"]}, "includes another file"),
        ({"requirements": ["./pkg"]}, "names a local path"),
    ],
)
def test_bad_images_are_refused(image: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        render_dockerfile(Image.model_validate(image), ["x"], runner_wheel=WHEEL, wheelhouse=False)


def test_direct_urls_are_refused_and_index_options_are_for_the_host() -> None:
    image = Image(requirements=["pkg @ https://example.org/pkg-1.0-py3-none-any.whl"])
    for wheelhouse in (False, True):
        with pytest.raises(UserError, match="needs the network, but the image build installs offline"):
            render_dockerfile(image, ["x"], runner_wheel=WHEEL, wheelhouse=wheelhouse)
    index = Image(requirements=["--extra-index-url https://example.org/simple", "pkg"])
    render_dockerfile(index, ["x"], runner_wheel=WHEEL, wheelhouse=False)  # pip download uses it
    with pytest.raises(UserError, match="needs the network"):
        render_dockerfile(index, ["x"], runner_wheel=WHEEL, wheelhouse=True)


@pytest.mark.parametrize(
    "wheel", ["/abs/runner.whl", "../runner.whl", ".runner/runner.tar.gz", ".runner/a b.whl"]
)
def test_bad_wheel_paths_are_refused(wheel: str) -> None:
    with pytest.raises(ValueError, match="runner_wheel"):
        render_dockerfile(Image(), ["x"], runner_wheel=wheel, wheelhouse=False)


def test_runner_wheel_path() -> None:
    assert runner_wheel_path("0.1.0") == ".runner/runner-0.1.0-py3-none-any.whl"
    assert runner_wheel_path("1.2.0+g1234") == ".runner/runner-1.2.0+g1234-py3-none-any.whl"


# The template: found as package data, mirrored at the top of the repository, filled strictly.


def test_template_is_package_data_and_images_links_to_it() -> None:
    packaged = resources.files("runner.images").joinpath("templates", "job.Dockerfile").read_text()
    top = REPO / "images" / "job.Dockerfile"
    assert top.read_text() == packaged
    assert top.resolve() == (REPO / "runner" / "images" / "templates" / "job.Dockerfile").resolve()
    assert (REPO / "images" / "README.md").is_file()


def test_template_notes_are_dropped_and_every_placeholder_documented() -> None:
    packaged = resources.files("runner.images").joinpath("templates", "job.Dockerfile").read_text()
    used = set(
        re.findall(
            r"\{\{\s*(\w+)\s*\}\}",
            "".join(line for line in packaged.splitlines(keepends=True) if not line.startswith("##")),
        )
    )
    notes = "".join(line for line in packaged.splitlines(keepends=True) if line.startswith("##"))
    readme = (REPO / "images" / "README.md").read_text()
    for name in used:
        assert re.search(rf"##\s+{name}\s", notes), f"{name} is not described in the template's notes"
        assert f"`{name}`" in readme, f"{name} is not described in images/README.md"
    text = render_dockerfile(Image(), ["x"], runner_wheel=WHEEL, wheelhouse=False)
    assert "##" not in text


def test_fill_is_strict() -> None:
    assert fill("## note\nA {{ a }} {{b}}\n", {"a": "1", "b": "$2"}) == "A 1 $2\n"
    with pytest.raises(ValueError, match=r"missing values \['b'\]"):
        fill("{{ a }} {{ b }}", {"a": "1"})
    with pytest.raises(ValueError, match=r"unused values \['c'\]"):
        fill("{{ a }}", {"a": "1", "c": "3"})


# Recipes from a manifest and its context.


def manifest(**image: Any) -> JobManifest:
    return JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo"},
            "spec": {"image": image, "command": ["python", "train.py"], "outputs": {"path": "/outputs"}},
        }
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_recipe_from_a_context(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"train.py": "print(1)\n", "requirements.txt": "numpy\n", "cache/x": "", ".dockerignore": "cache\n"},
    )
    recipe = build_recipe(
        manifest(requirements="./requirements.txt", apt=["git"]), tmp_path, runner_version="0.1.0"
    )
    assert recipe.job == "demo"
    assert recipe.files == (".dockerignore", "requirements.txt", "train.py")
    assert recipe.requirements == "requirements.txt"
    assert recipe.requirements_text == "numpy\n"
    assert recipe.apt == ("git",)
    assert recipe.command == ("python", "train.py")
    assert not recipe.wheelhouse
    assert recipe.runner_wheel == WHEEL
    assert recipe.dockerfile == render_dockerfile(
        Image(requirements="requirements.txt", apt=["git"]),
        ["python", "train.py"],
        runner_wheel=WHEEL,
        wheelhouse=False,
    )


def test_recipe_with_a_list_and_none(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": ""})
    listed = build_recipe(manifest(requirements=["numpy", " pandas "]), tmp_path, runner_version="0.1.0")
    assert listed.requirements == ("numpy", " pandas ")
    assert listed.requirements_text == "numpy\npandas\n"
    none = build_recipe(manifest(), tmp_path, runner_version="0.1.0")
    assert none.requirements is None and none.requirements_text is None
    assert "requirements.txt" not in none.dockerfile
    empty = build_recipe(manifest(requirements=[]), tmp_path, runner_version="0.1.0")
    assert empty.requirements is None and empty.dockerfile == none.dockerfile


def test_wheelhouse_turns_on_air_gapped_mode(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"train.py": "", "requirements.txt": "numpy\n", "wheelhouse/numpy-2.0-py3-none-any.whl": "w"},
    )
    recipe = build_recipe(manifest(requirements="requirements.txt"), tmp_path, runner_version="0.1.0")
    assert recipe.wheelhouse and not recipe.host_wheels, "the context's wheels win"
    assert "--no-index --find-links /tmp/runner-build/wheelhouse \\\n        -r" in recipe.dockerfile
    assert recipe.job_files == ("requirements.txt", "train.py")
    write(tmp_path / "other", {"train.py": "", "requirements.txt": "numpy\n"})
    other = build_recipe(
        manifest(requirements="requirements.txt"), tmp_path / "other", runner_version="0.1.0"
    )
    assert other.host_wheels and not other.wheelhouse, "without one, the host resolves the wheels"
    assert "--no-index --find-links /tmp/runner-build/wheelhouse \\\n        -r" in other.dockerfile


def test_an_empty_wheelhouse_still_means_air_gapped(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": ""})
    (tmp_path / "wheelhouse").mkdir()
    recipe = build_recipe(manifest(requirements=["numpy"]), tmp_path, runner_version="0.1.0")
    assert recipe.wheelhouse and not recipe.host_wheels
    assert any(
        entry.name == ".runner/wheelhouse" and entry.kind == "dir" for entry in recipe.entries(tmp_path)
    )
    # Without requirements the job installs nothing: its wheelhouse is not sent.
    bare = build_recipe(manifest(), tmp_path, runner_version="0.1.0")
    assert bare.wheelhouse and not any(
        entry.name.startswith(".runner/wheelhouse") for entry in bare.entries(tmp_path)
    )


@pytest.mark.parametrize(
    "setup",
    ["ignored", "symlink-dir", "nested", "file"],
)
def test_what_is_not_a_wheelhouse(tmp_path: Path, setup: str) -> None:
    context = write(tmp_path / "context", {"train.py": ""})
    if setup == "ignored":
        write(context, {"wheelhouse/a.whl": "", ".dockerignore": "wheelhouse\n"})
    elif setup == "symlink-dir":
        write(tmp_path, {"elsewhere/a.whl": ""})
        (context / "wheelhouse").symlink_to(tmp_path / "elsewhere")
    elif setup == "nested":
        write(context, {"sub/wheelhouse/a.whl": ""})
    else:
        write(context, {"wheelhouse": "not a directory"})
    assert not build_recipe(manifest(), context, runner_version="0.1.0").wheelhouse


def test_air_gapped_requirements_file_with_a_url_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "# pinned\nnumpy\n--index-url https://pypi.org/simple\n",
            "wheelhouse/x.whl": "",
        },
    )
    with pytest.raises(UserError, match=r"requirements\.txt line 3: .* needs the network"):
        build_recipe(manifest(requirements="requirements.txt"), tmp_path, runner_version="0.1.0")


@pytest.mark.parametrize(
    ("declared", "files", "message"),
    [
        ("requirements.txt", {}, "is not in the context"),
        ("requirements.txt", {"requirements.txt": "x", ".dockerignore": "*.txt"}, "is not in the context"),
        ("../requirements.txt", {}, "must be a path inside the context"),
        ("/etc/requirements.txt", {}, "must be a path inside the context"),
        ("req.txt", {"req.txt": "numpy\n-r base.txt  # shared\n"}, "req.txt line 2: '-r base.txt' includes"),
        ("req.txt", {"req.txt": "-cconstraints.txt\n"}, "includes another file"),
        ("req.txt", {"req.txt": "-e .\n"}, "names a local path"),
        ("req.txt", {"req.txt": "numpy # comment -r x\n"}, None),
    ],
)
def test_requirements_file_rules(
    tmp_path: Path, declared: str, files: dict[str, str], message: str | None
) -> None:
    write(tmp_path, {"train.py": "", **files})
    if message is None:
        build_recipe(manifest(requirements=declared), tmp_path, runner_version="0.1.0")
        return
    with pytest.raises(UserError, match=message):
        build_recipe(manifest(requirements=declared), tmp_path, runner_version="0.1.0")


def test_requirements_file_must_be_regular_and_utf8(tmp_path: Path) -> None:
    write(tmp_path, {"real.txt": "numpy\n"})
    (tmp_path / "requirements.txt").symlink_to("real.txt")
    with pytest.raises(UserError, match="symbolic link"):
        build_recipe(manifest(requirements="requirements.txt"), tmp_path, runner_version="0.1.0")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(UserError, match="not UTF-8"):
        build_recipe(manifest(requirements="latin.txt"), tmp_path, runner_version="0.1.0")


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"spec\.image\.context: .* is not a directory"):
        build_recipe(manifest(), tmp_path / "missing", runner_version="0.1.0")


def test_skip_keeps_the_runner_home_out(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "", ".runner/runs.db": "x"})
    recipe = build_recipe(manifest(), tmp_path, runner_version="0.1.0", skip=[tmp_path / ".runner"])
    assert recipe.files == ("train.py",)


def test_entries_lay_out_the_build_context(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"train.py": "", "run.sh": "#!/bin/sh\n", "requirements.txt": "numpy\n", "wheelhouse/numpy.whl": "w"},
    )
    (tmp_path / "run.sh").chmod(0o700)
    (tmp_path / "train.py").chmod(0o600)
    (tmp_path / "latest").symlink_to("train.py")
    recipe = build_recipe(manifest(requirements="requirements.txt"), tmp_path, runner_version="0.1.0")
    entries = {entry.name: entry for entry in recipe.entries(tmp_path)}
    assert list(entries) == [
        "Dockerfile",
        ".runner",
        ".runner/requirements.txt",
        ".runner/wheelhouse",
        ".runner/wheelhouse/numpy.whl",
        "job",
        "job/latest",
        "job/requirements.txt",
        "job/run.sh",
        "job/train.py",
    ]
    assert entries["Dockerfile"].data == recipe.dockerfile.encode()
    assert entries[".runner/requirements.txt"].data == b"numpy\n"
    assert entries[".runner/wheelhouse/numpy.whl"].source == "wheelhouse/numpy.whl"
    assert (entries["job/run.sh"].mode, entries["job/train.py"].mode) == (0o755, 0o644)
    assert entries["job/latest"].kind == "symlink" and entries["job/latest"].source == "latest"
    assert all(entries[name].kind == "dir" for name in (".runner", ".runner/wheelhouse", "job"))
    # Every COPY source of the Dockerfile is in the build context.
    for keyword, arguments in instructions(recipe.dockerfile):
        if keyword == "COPY":
            source = arguments.split()[-2].rstrip("/")
            # the agent's wheels are the build step's to add (runner.images.build)
            assert source in entries or source in (recipe.runner_wheel, AGENT_DIR)


def test_recipe_is_a_frozen_value(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": ""})
    recipe = build_recipe(manifest(), tmp_path, runner_version="0.1.0")
    with pytest.raises(AttributeError):
        recipe.base = "other"  # type: ignore[misc]
    assert recipe == build_recipe(manifest(), tmp_path, runner_version="0.1.0")
    assert isinstance(recipe, BuildRecipe)
