"""The resident runner (RUNNER_RESIDENT=1): commands handed to a process that has runner's modules
imported answer as they do in their own process (output, exit code, directory, environment, limits,
Ctrl-C, Ctrl-Z), their runs' supervisors are forked by it, and it serves its own user only, declines a
caller in another cgroup and every caller once its code changed, and leaves when idle or stopped.

Each server here has an address of its own (RUNNER_RESIDENT_ADDRESS), so none meets a user's."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.cli.main import exit_status
from runner.cli.resident.client import DECLINED, EXIT_LOST, ask, forward
from runner.cli.resident.server import changed, fingerprint
from runner.cli.resident.spawn import EXITED, ServedProcess
from runner.cli.resident.wire import Frames, address, frame, peer
from tests.conftest import run_runner, status_of, wait_for, wait_for_state, write_job

ENTRY = [sys.executable, "-m", "runner.cli.entry"]


@dataclass(frozen=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        return {"RUNNER_RESIDENT": "1", "RUNNER_RESIDENT_ADDRESS": self.name}


def start_server(name: str, idle: float = 300) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RUNNER_RESIDENT_ADDRESS": name, "RUNNER_RESIDENT_IDLE": str(idle)}
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli.resident.server"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def asked_with(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, object]] | None:
    with monkeypatch.context() as patched:
        patched.setenv("RUNNER_RESIDENT_ADDRESS", name)
        return ask(kind)


def stopped(server: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    asked_with(name, "stop", monkeypatch)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A resident server of its own, answering (its modules imported), stopped afterwards."""
    name = f"runner-test-{uuid.uuid4().hex[:12]}"
    process = start_server(name)
    wait_for(lambda: asked_with(name, "status", monkeypatch), 60, "the resident server to answer")
    yield Server(name, process)
    stopped(process, monkeypatch, name)


def served(server: Server, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int | str | None:
    """forward() from this process (its fds 0, 1, 2 go to the command, so capfd sees its output)."""
    with monkeypatch.context() as patched:
        for key, value in server.env.items():
            patched.setenv(key, value)
        return forward(args)


def supervisor_of(home: Path, run_id: str) -> int:
    with sqlite3.connect(home / "runs.db") as db:
        (pid,) = db.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run_id,)).fetchone()
    return int(pid)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


# --- commands through the server --------------------------------------------------------------------


def test_a_command_through_the_server_prints_and_exits_as_in_its_own_process(
    server: Server,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    submitted = run_runner("submit", str(write_job(tmp_path / "jobs" / "hello", "hello")))
    assert submitted.code == 0, submitted.output
    here = run_runner("list", "-o", "json")
    capfd.readouterr()

    assert served(server, ["list", "-o", "json"], monkeypatch) == 0
    out, _ = capfd.readouterr()
    assert json.loads(out) == json.loads(here.stdout)
    assert [run["job"] for run in json.loads(out)] == ["hello"]

    refused = run_runner("status", "no-such-run")
    assert served(server, ["status", "no-such-run"], monkeypatch) == refused.code != 0
    _, err = capfd.readouterr()
    assert err == refused.stderr
    assert "no-such-run" in err


def test_the_command_runs_in_the_callers_directory_with_the_callers_environment(
    server: Server,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    write_job(tmp_path / "here", "relative")
    monkeypatch.chdir(tmp_path / "here")
    assert served(server, ["render", "job.yaml", "-o", "json"], monkeypatch) == 0
    assert json.loads(capfd.readouterr().out)["metadata"]["name"] == "relative"

    assert run_runner("submit", str(write_job(tmp_path / "jobs" / "mine", "mine"))).code == 0
    capfd.readouterr()
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "another-home"))
    assert served(server, ["list", "-o", "json"], monkeypatch) == 0
    assert json.loads(capfd.readouterr().out) == []
    monkeypatch.setenv("RUNNER_HOME", str(home))
    assert served(server, ["list", "-o", "json"], monkeypatch) == 0
    assert [run["job"] for run in json.loads(capfd.readouterr().out)] == ["mine"]


def test_ctrl_c_reaches_the_command_and_its_run_is_cancelled(
    server: Server, home: Path, tmp_path: Path
) -> None:
    """Ctrl-C goes to the client (the terminal's foreground process): it relays it to the command,
    which cancels its run as `runner submit` does in its own process. The run's supervisor was forked
    by the server, ready at once, not started as a new interpreter by the command."""
    with long_submission(server, tmp_path) as (client, run_id):
        assert parent_of(supervisor_of(home, run_id)) == server.process.pid
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
    assert client.returncode == 130, err
    assert status_of(run_id)["state"] == "cancelled"


@contextlib.contextmanager
def long_submission(server: Server, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`runner submit` of a long job through the server: its client, and its run once running; the
    client killed afterwards if it is still there."""
    manifest = write_job(tmp_path / "jobs" / "long", "long", command=["sleep", "120"])
    client = subprocess.Popen(
        [*ENTRY, "submit", str(manifest)],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs = wait_for(lambda: json.loads(run_runner("list", "-o", "json").stdout), 60, "the run")
        wait_for_state(runs[0]["id"], "running")
        yield client, runs[0]["id"]
    finally:
        if client.poll() is None:
            client.kill()


def children_of(parent: int) -> list[int]:
    """The processes whose parent is parent (one that ends while they are looked through is left out)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_of(int(entry.name)) == parent:
                    children.append(int(entry.name))
            except OSError:
                continue
    return children


def process_state(pid: int) -> str:
    """The state letter /proc gives a process: T when stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_stops_the_command_with_its_client_and_continuing_resumes_both(
    server: Server, home: Path, tmp_path: Path
) -> None:
    """Ctrl-Z stops the command's process (the server's child, outside the terminal's process group)
    and then the client, as the shell stops a job; the shell's fg or bg continues the client, which
    continues the command."""
    with long_submission(server, tmp_path) as (client, run_id):
        supervisor = supervisor_of(home, run_id)
        (command,) = [pid for pid in children_of(server.process.pid) if pid != supervisor]
        client.send_signal(signal.SIGTSTP)
        wait_for(lambda: process_state(command) == "T" == process_state(client.pid), 30, "both stopped")
        client.send_signal(signal.SIGCONT)
        wait_for(lambda: "T" not in (process_state(command), process_state(client.pid)), 30, "both going")
        client.send_signal(signal.SIGINT)
        client.communicate(timeout=60)
    assert client.returncode == 130
    assert status_of(run_id)["state"] == "cancelled"


def submitted_through(
    server: Server, manifest: Path, before: Callable[[], object]
) -> subprocess.CompletedProcess[str]:
    """`runner submit manifest` by a client process that first calls before (in the child, before the
    console script starts: a limit, a nice value, a cgroup of its own)."""
    return subprocess.run(
        [*ENTRY, "submit", str(manifest)],
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=before,
        check=False,
    )


def test_the_command_and_its_runs_have_the_callers_limits_and_nice_value(
    server: Server, tmp_path: Path
) -> None:
    """A job started through the server is limited as one started from the caller's shell would be:
    the command's process and the supervisor the server forks for its run take on the caller's
    resource limits (ulimit) and nice value, and the job inherits them."""
    # and the parent of its supervisor (the job's parent is the process that records its exit code,
    # whose parent is the supervisor): the server, which forked that supervisor
    script = (
        "ulimit -n; nice; supervisor=$(cut -d' ' -f4 /proc/$PPID/stat); cut -d' ' -f4 /proc/$supervisor/stat"
    )
    manifest = write_job(tmp_path / "jobs" / "limits", "limits", command=["sh", "-c", script])

    def lowered() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (321, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        os.nice(7)

    done = submitted_through(server, manifest, lowered)
    assert done.returncode == 0, done.stderr
    printed = [line.split("] ", 1)[1] for line in done.stdout.splitlines()]
    assert printed == ["321", "7", str(server.process.pid)]


PIDS_CGROUPS = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids hierarchy, as on this machine


@pytest.fixture
def other_cgroup() -> Iterator[Path]:
    """A pids cgroup of its own (v1, as root may make one here), removed once its processes are gone."""
    group = PIDS_CGROUPS / f"runner-test-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
    except OSError as error:
        pytest.skip(f"no cgroup can be made here ({error}): cgroup v1's pids hierarchy, as root")
    yield group
    wait_for(lambda: not (group / "cgroup.procs").read_text().split(), 60, "the cgroup's processes to end")
    group.rmdir()


def test_a_caller_in_another_cgroup_runs_its_command_itself(
    server: Server, tmp_path: Path, other_cgroup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command from a process in another cgroup than the server's (a systemd scope with a memory
    limit, a batch system's job) is declined: it runs in the caller's own process, so its run stays in
    the caller's cgroup, under its limits; the server goes on serving the others."""
    manifest = write_job(tmp_path / "jobs" / "scoped", "scoped", command=["cat", "/proc/self/cgroup"])
    done = submitted_through(
        server, manifest, lambda: (other_cgroup / "cgroup.procs").write_text(str(os.getpid()))
    )
    assert done.returncode == 0, done.stderr
    assert f"pids:/{other_cgroup.name}" in done.stdout  # the job ran in the caller's cgroup
    status = asked_with(server.name, "status", monkeypatch)
    assert status is not None and status[1]["pid"] == server.process.pid
    assert served(server, ["list", "-o", "name"], monkeypatch) == 0  # from this cgroup: served

    with monkeypatch.context() as patched:  # what the client hears from the server for such a caller
        patched.setenv("RUNNER_RESIDENT_ADDRESS", server.name)
        (home,) = [
            line.split(":", 2)[2]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.split(":")[1] == "pids"
        ]
        (other_cgroup / "cgroup.procs").write_text(str(os.getpid()))
        try:
            assert forward(["list"]) == DECLINED
        finally:  # this process back where it was
            (PIDS_CGROUPS / home.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))


def test_a_command_killed_by_a_relayed_signal_ends_its_client_by_that_signal(
    server: Server, home: Path, tmp_path: Path
) -> None:
    """`runner logs -f` does not handle SIGTERM: it dies of it, and so does its client, as the command
    would in its own process (a shell sees 143 either way)."""
    manifest = write_job(tmp_path / "jobs" / "talk", "talk", command=["sh", "-c", "echo started; sleep 120"])
    submitted = run_runner("submit", "-d", str(manifest))
    run_id = submitted.stdout.strip()
    client = subprocess.Popen(
        [*ENTRY, "logs", "-f", run_id],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert client.stdout is not None
        assert "started" in client.stdout.readline()
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=60) == -signal.SIGTERM
    finally:
        if client.poll() is None:
            client.kill()
        assert run_runner("cancel", run_id).code == 0


@pytest.mark.usefixtures("docker_client", "no_leftover_containers")
def test_a_docker_submit_through_the_server_streams_its_job_and_succeeds(
    server: Server,
    tmp_path: Path,
    python_base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What bench/containers.py times: the image check, the run's container made by a supervisor the
    server forked (the docker SDK imported already), its log streamed to the caller's stdout."""
    manifest = write_job(
        tmp_path / "jobs" / "boxed", "boxed", image={"base": python_base_image}, command=["echo", "in-a-box"]
    )
    assert served(server, ["submit", "--backend", "docker", str(manifest)], monkeypatch) == 0
    out, err = capfd.readouterr()
    assert out.endswith("] in-a-box\n"), out + err
    runs = json.loads(run_runner("list", "-o", "json").stdout)
    assert [(run["backend"], run["state"]) for run in runs] == [("docker", "succeeded")]


def test_without_a_server_the_command_runs_in_its_own_process_and_starts_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"runner-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "RUNNER_RESIDENT": "1",
        "RUNNER_RESIDENT_ADDRESS": name,
        "RUNNER_RESIDENT_IDLE": "60",
    }
    monkeypatch.setenv("RUNNER_RESIDENT_ADDRESS", name)
    assert forward(["list"]) is None  # nothing answers: the caller runs it
    done = subprocess.run(
        [*ENTRY, "list", "-o", "json"], env=env, capture_output=True, text=True, check=False
    )
    try:
        assert (done.returncode, json.loads(done.stdout)) == (0, [])
        about = wait_for(lambda: ask("status"), 60, "the server the command started")
        assert about[0] == "status"
        assert isinstance(about[1]["pid"], int)
    finally:
        answer = ask("stop")
        if answer is not None:
            pid = int(str(answer[1]["pid"]))
            wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, "the started server to leave")


def test_status_and_stop(server: Server) -> None:
    env = {**os.environ, **server.env}
    shown = subprocess.run(
        [*ENTRY, "resident", "status", "-o", "json"], env=env, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    about = json.loads(shown.stdout)
    assert (about["running"], about["pid"]) == (True, server.process.pid)

    stopping = subprocess.run(
        [*ENTRY, "resident", "stop"], env=env, capture_output=True, text=True, check=False
    )
    assert stopping.stdout == f"resident server {server.process.pid} stopped\n"
    assert server.process.wait(timeout=30) == 0
    after = subprocess.run(
        [sys.executable, "-m", "runner.cli.main", "resident", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert after.returncode == 1
    assert "no resident server" in after.stdout


def test_callers_that_say_nothing_or_nonsense_leave_the_server_serving(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answered(said: bytes) -> object:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(f"\0{server.name}")
            sock.sendall(said)
            sock.shutdown(socket.SHUT_WR)
            return Frames(sock).next()

    for nonsense in (b"", b"\0\0\0\2\xff\xff", frame({"kind": "nonsense"})):
        assert answered(nonsense) is None  # no answer, and the connection closed
    declined = answered(frame({"kind": "run"}))  # no streams, no directory: the caller runs it itself
    assert isinstance(declined, tuple) and declined[0] == DECLINED
    answer = asked_with(server.name, "status", monkeypatch)
    assert answer is not None
    assert answer[1]["pid"] == server.process.pid


def test_an_idle_server_leaves_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"runner-test-{uuid.uuid4().hex[:12]}"
    process = start_server(name, idle=0.5)
    try:
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            stopped(process, monkeypatch, name)
    assert asked_with(name, "status", monkeypatch) is None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_gets_no_answer_and_the_server_serves_on(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child that becomes nobody, asks, and says what came back
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(f"\0{server.name}")
                try:
                    sock.sendall(frame({"kind": "status"}))
                    answer = sock.recv(100)
                except (BrokenPipeError, ConnectionResetError):  # closed, the request unread
                    answer = b""
                os.write(writing, b"answered" if answer else b"closed")
        except BaseException as error:
            os.write(writing, repr(error).encode())
        finally:
            os._exit(0)
    os.close(writing)
    said = os.read(reading, 100)
    os.close(reading)
    os.waitpid(pid, 0)
    assert said == b"closed"
    assert asked_with(server.name, "status", monkeypatch) is not None


# --- the parts -------------------------------------------------------------------------------------


def test_frames_survive_being_split_and_carry_file_descriptors() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reading, writing = os.pipe()
    with left, right:
        data = frame({"kind": "run", "argv": ["runner", "list"] * 1000})
        socket.send_fds(left, [data[:3]], [reading])
        left.sendall(data[3:] + frame(("exit", 3)))
        frames = Frames(right)
        assert frames.next(with_fds=1) == {"kind": "run", "argv": ["runner", "list"] * 1000}
        assert frames.next() == ("exit", 3)
        passed = frames.fds[0]
        os.write(writing, b"through")
        assert os.read(passed, 7) == b"through"
        left.sendall(b"\0\0\0\2\xff\xff")  # not marshal data
        assert frames.next() is None
        left.close()
        assert frames.next() is None
        assert peer(right) == (os.getpid(), os.getuid())  # both ends are this process's
    for fd in (reading, writing, passed):
        os.close(fd)


def test_the_address_is_the_users_and_the_installations() -> None:
    mine = address(0, "/venv/bin/python", ["/venv/lib/site-packages"])
    assert mine.startswith("\0runner-resident-0-")
    assert address(0, "/venv/bin/python", ["/venv/lib/site-packages"]) == mine
    assert address(1000, "/venv/bin/python", ["/venv/lib/site-packages"]) != mine
    assert address(0, "/other/bin/python", ["/venv/lib/site-packages"]) != mine
    assert address(0, "/venv/bin/python", ["/src", "/venv/lib/site-packages"]) != mine


def test_a_changed_or_removed_module_makes_the_server_stale(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("x = 1\n")
    known = {str(module): module.stat().st_mtime_ns}
    assert not changed(known)
    os.utime(module, ns=(known[str(module)], known[str(module)] + 1_000_000_000))
    assert changed(known)
    module.unlink()
    assert changed(known)
    assert all(path.endswith(".py") for path in fingerprint())
    assert any(path.endswith("runner/cli/resident/server.py") for path in fingerprint())


def test_a_served_process_is_watched_through_its_pidfd() -> None:
    child = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE)
    assert child.stdin is not None
    served_process = ServedProcess(child.pid, os.pidfd_open(child.pid), child.stdin)
    try:
        assert served_process.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            served_process.wait(timeout=0.05)
        served_process.kill()
        child.wait(timeout=30)  # this test's child: reaped here, as the server reaps its own
        assert served_process.wait(timeout=30) == EXITED
        assert served_process.poll() == EXITED
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert ServedProcess(child.pid, None, child.stdin).poll() == EXITED  # gone before it was watched


def test_exit_statuses_are_pythons() -> None:
    assert exit_status(None) == 0
    assert exit_status(3) == 3
    assert exit_status("message") == 1
    assert EXIT_LOST == 1
