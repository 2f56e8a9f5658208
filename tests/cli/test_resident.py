"""The resident runner (the console script's default; RUNNER_RESIDENT=0 turns it off): commands handed
to a process that has runner's modules imported answer as they do in their own process (output, exit
code, directory, environment, limits, Ctrl-C, Ctrl-Z), their runs' supervisors are forked by it, each
cgroup gets a server of its own, and a server serves its own user only, declines a caller that moved to
another cgroup and every caller once its code changed, and leaves when idle or stopped.

Each server here has an address of its own (RUNNER_RESIDENT_ADDRESS), so none meets a user's."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
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

from runner.cli.entry import resident
from runner.cli.main import exit_status
from runner.cli.resident.client import DECLINED, EXIT_LOST, ask, cgroups_of, forward
from runner.cli.resident.server import changed, fingerprint
from runner.cli.resident.spawn import EXITED, ServedProcess
from runner.cli.resident.wire import Frames, address, cgroup_label, family, frame, listening, peer
from tests.conftest import run_runner, status_of, wait_for, wait_for_state, write_job

ENTRY = [sys.executable, "-m", "runner.cli.entry"]


@dataclass(frozen=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        return {"RUNNER_RESIDENT": "1", "RUNNER_RESIDENT_ADDRESS": self.name}

    @property
    def address(self) -> str:
        """Where it listens: its name, and the cgroups of this process, which started it."""
        return address(os.getuid(), sys.executable, [], cgroups_of("self") or "", self.name)


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
    """`runner submit` of a long job through the server: its client, and its run once running. The
    client is a process group of its own in this session, as a shell with job control starts a job: in
    an orphaned process group (pytest started by a parent that has gone, in another session) the kernel
    would discard the SIGTSTP it sends itself. Afterwards a client still there is continued and
    interrupted (its run cancelled), and killed if that does not end it."""
    manifest = write_job(tmp_path / "jobs" / "long", "long", command=["sleep", "120"])
    client = subprocess.Popen(
        [*ENTRY, "submit", str(manifest)],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        runs = wait_for(lambda: json.loads(run_runner("list", "-o", "json").stdout), 60, "the run")
        wait_for_state(runs[0]["id"], "running")
        yield client, runs[0]["id"]
    finally:
        if client.poll() is None:
            client.send_signal(signal.SIGCONT)
            client.send_signal(signal.SIGINT)
            try:
                client.communicate(timeout=60)
            except subprocess.TimeoutExpired:
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


def run_through(
    server: Server, args: list[str], before: Callable[[], object]
) -> subprocess.CompletedProcess[str]:
    """`runner ARGS` by a client process that first calls before (in the child, before the console
    script starts: a limit, a nice value, a cgroup of its own)."""
    return subprocess.run(
        [*ENTRY, *args],
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

    done = run_through(server, ["submit", str(manifest)], lowered)
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


def test_a_caller_in_another_cgroup_gets_a_server_of_its_own_there(
    server: Server, tmp_path: Path, other_cgroup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands from a process in another cgroup than a server's (another terminal's scope, a systemd
    unit with a memory limit, a batch system's job) go to a server of that cgroup, which the first of
    them starts: the commands and their runs stay in the caller's cgroup, under its limits, and the
    other server serves on. `runner resident stop` stops both."""
    # the job's cgroups, then the parent of its supervisor (the job's parent records its exit code, and
    # its parent is the supervisor): the resident server that forked it, or a `runner submit` process
    script = (
        "cat /proc/self/cgroup; "
        "supervisor=$(cut -d' ' -f4 /proc/$PPID/stat); cut -d' ' -f4 /proc/$supervisor/stat"
    )
    manifest = write_job(tmp_path / "jobs" / "scoped", "scoped", command=["sh", "-c", script])

    def into_other_cgroup() -> None:
        (other_cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def from_other_cgroup(*args: str) -> subprocess.CompletedProcess[str]:
        return run_through(server, list(args), into_other_cgroup)

    first = run_through(server, ["submit", str(manifest)], into_other_cgroup)  # none serves there yet
    try:
        assert first.returncode == 0, first.stderr
        assert f"pids:/{other_cgroup.name}" in first.stdout  # the job ran in the caller's cgroup
        assert first.stdout.splitlines()[-1].split("] ", 1)[1] != str(server.process.pid)

        shown = wait_for(
            lambda: (
                (asked := from_other_cgroup("resident", "status", "-o", "json")).returncode == 0 and asked
            ),
            60,
            "the server the first command started in its cgroup",
        )
        servers = json.loads(shown.stdout)["servers"]
        (there,) = [about for about in servers if about["current"]]
        assert str(there["pid"]) in (other_cgroup / "cgroup.procs").read_text().split()
        assert f"pids:/{other_cgroup.name}" in there["cgroup"].split()
        assert {about["pid"] for about in servers} == {server.process.pid, there["pid"]}

        second = run_through(server, ["submit", str(manifest)], into_other_cgroup)
        assert second.returncode == 0, second.stderr
        assert f"pids:/{other_cgroup.name}" in second.stdout
        assert second.stdout.splitlines()[-1].split("] ", 1)[1] == str(there["pid"])  # served there
        assert served(server, ["list", "-o", "name"], monkeypatch) == 0  # and here, by the first server
    finally:
        stopping = from_other_cgroup("resident", "stop")
    assert sorted(stopping.stdout.splitlines()) == sorted(
        f"resident server {pid} stopped" for pid in (server.process.pid, there["pid"])
    )
    assert server.process.wait(timeout=30) == 0


def test_a_caller_that_moved_to_another_cgroup_is_declined(
    server: Server, other_cgroup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that found a server's address, then moved to another cgroup before it asked, is told
    to run its command itself: in the server's cgroup it would escape its own."""
    at = server.address
    (home,) = [
        line.split(":", 2)[2]
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if line.split(":")[1] == "pids"
    ]
    (other_cgroup / "cgroup.procs").write_text(str(os.getpid()))
    try:
        assert forward(["list"], at=at) == DECLINED
    finally:  # this process back where it was
        (PIDS_CGROUPS / home.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
    assert served(server, ["list", "-o", "name"], monkeypatch) == 0


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


def test_by_default_a_command_starts_a_server_that_serves_the_next_and_resident_0_bypasses_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console script without RUNNER_RESIDENT: the first command finds no server, runs in its own
    process and starts one; the next is served by it. With RUNNER_RESIDENT=0 a command runs in its own
    process though a server answers."""
    name = f"runner-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "RUNNER_RESIDENT_ADDRESS": name, "RUNNER_RESIDENT_IDLE": "60"}
    env.pop("RUNNER_RESIDENT", None)
    monkeypatch.setenv("RUNNER_RESIDENT_ADDRESS", name)
    # the parent of the job's supervisor: the server that forked it, or the submitting process
    script = "supervisor=$(cut -d' ' -f4 /proc/$PPID/stat); cut -d' ' -f4 /proc/$supervisor/stat"
    manifest = write_job(tmp_path / "jobs" / "parent", "parent", command=["sh", "-c", script])

    def supervisor_parent(**more: str) -> int:
        done = subprocess.run(
            [*ENTRY, "submit", str(manifest)],
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.splitlines()[-1].split("] ", 1)[1])

    assert forward(["list"]) is None  # nothing answers: the first command runs in its own process
    first = supervisor_parent()
    try:
        about = wait_for(lambda: ask("status"), 60, "the server the first command started")
        pid = int(str(about[1]["pid"]))
        assert first != pid
        assert supervisor_parent() == pid
        assert supervisor_parent(RUNNER_RESIDENT="0") != pid
    finally:
        answer = ask("stop")
        if answer is not None:
            stopped_pid = int(str(answer[1]["pid"]))
            wait_for(lambda: not Path(f"/proc/{stopped_pid}").exists(), 30, "the started server to leave")


def test_status_and_stop(server: Server) -> None:
    env = {**os.environ, **server.env}
    shown = subprocess.run(
        [*ENTRY, "resident", "status", "-o", "json"], env=env, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    about = json.loads(shown.stdout)
    assert about["running"] is True
    assert [(each["pid"], each["current"]) for each in about["servers"]] == [(server.process.pid, True)]
    table = subprocess.run(
        [*ENTRY, "resident", "status"], env=env, capture_output=True, text=True, check=False
    ).stdout.splitlines()
    assert table[0].split() == ["CURRENT", "PID", "SERVING", "SINCE", "CGROUP"]
    assert table[1].split()[:2] == ["*", str(server.process.pid)]

    stopping = subprocess.run(
        [*ENTRY, "resident", "stop"], env=env, capture_output=True, text=True, check=False
    )
    assert stopping.stdout == f"resident server {server.process.pid} stopped\n"
    assert server.process.wait(timeout=30) == 0
    after = subprocess.run(
        [*ENTRY, "resident", "status"],
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
            sock.connect(server.address)
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
    at = server.address
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child that becomes nobody, asks, and says what came back
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(at)
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


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_a_client_sends_nothing_to_another_users_process_at_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An abstract socket's name is anyone's to take: another user's process listening where this
    user's server would is sent no command, no environment and no terminal, and the command runs in its
    caller's own process."""
    name = f"runner-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("RUNNER_RESIDENT_ADDRESS", name)
    at = address(os.getuid(), sys.executable, [], cgroups_of("self") or "", name)
    listening_now, listening_said = os.pipe()
    done, done_said = os.pipe()
    heard, heard_said = os.pipe()
    pid = os.fork()
    if pid == 0:  # nobody, listening at this user's address; then says how many bytes it was sent
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as squatter:
                squatter.bind(at)
                squatter.listen(8)
                os.write(listening_said, b"x")
                received = 0
                while squatter.fileno() in select.select([squatter.fileno(), done], [], [])[0]:
                    connection, _ = squatter.accept()  # what it was sent, then closed: no answer
                    with connection:
                        received += len(connection.recv(65536))
                os.write(heard_said, str(received).encode())
        finally:
            os._exit(0)
    try:
        os.read(listening_now, 1)
        assert forward(["list"]) == DECLINED  # run here, and no server started to fail at the address
        assert ask("status") is None
    finally:
        os.write(done_said, b"x")
        sent = os.read(heard, 100)
        os.waitpid(pid, 0)
        for fd in (listening_now, listening_said, done, done_said, heard, heard_said):
            os.close(fd)
    assert sent == b"0"


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


def test_the_address_is_the_users_the_installations_and_the_cgroups() -> None:
    site = ["/venv/lib/site-packages"]
    mine = address(0, "/venv/bin/python", site, "0::/user.slice/a.scope\n")
    assert mine.startswith("\0" + family(0, "/venv/bin/python", site))
    assert family(0, "/venv/bin/python", site).startswith("runner-resident-0-")
    assert address(0, "/venv/bin/python", site, "0::/user.slice/a.scope\n") == mine
    assert address(1000, "/venv/bin/python", site, "0::/user.slice/a.scope\n") != mine
    assert address(0, "/other/bin/python", site, "0::/user.slice/a.scope\n") != mine
    assert address(0, "/venv/bin/python", ["/src", *site], "0::/user.slice/a.scope\n") != mine
    assert address(0, "/venv/bin/python", site, "0::/user.slice/b.scope\n") != mine
    named = address(0, "/venv/bin/python", site, "0::/user.slice/a.scope\n", "side")
    assert named.startswith("\0side-") and named != address(0, "", [], "0::/\n", "side")


def test_the_servers_listening_are_found_by_their_names_start() -> None:
    said = (
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000: 00000002 00000000 00010000 0001 01 101 @runner-resident-0-aa-01\n"
        "0000: 00000003 00000000 00000000 0001 03 102 @runner-resident-0-aa-01\n"  # a connection to it
        "0000: 00000002 00000000 00010000 0001 01 103 @runner-resident-0-aa-02\n"
        "0000: 00000002 00000000 00010000 0001 01 104 @runner-resident-1000-aa-01\n"  # another user's
        "0000: 00000002 00000000 00010000 0001 01 105 /run/docker.sock\n"
        "0000: 00000002 00000000 00010000 0001 01 106\n"  # unnamed
    )
    assert listening(said, "runner-resident-0-aa-") == [
        "\0runner-resident-0-aa-01",
        "\0runner-resident-0-aa-02",
    ]


def test_a_cgroup_is_named_by_its_unified_path_or_its_placed_v1_hierarchies() -> None:
    assert cgroup_label("0::/user.slice/user-1000.slice/session-3.scope\n") == (
        "/user.slice/user-1000.slice/session-3.scope"
    )
    hybrid = "12:pids:/runner-test-1\n11:memory:/jobs/7\n1:name=systemd:/\n0::/\n"
    assert cgroup_label(hybrid) == "pids:/runner-test-1 memory:/jobs/7"
    assert cgroup_label("12:pids:/\n1:name=systemd:/\n0::/\n") == "/"


@pytest.mark.parametrize(
    ("said", "on"), [(None, True), ("", True), ("1", True), ("yes", True), ("0", False), (" Off ", False)]
)
def test_commands_go_to_a_resident_server_unless_runner_resident_says_no(
    said: str | None, on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if said is None:
        monkeypatch.delenv("RUNNER_RESIDENT", raising=False)
    else:
        monkeypatch.setenv("RUNNER_RESIDENT", said)
    assert resident(["list"]) is on
    assert resident(["resident", "stop"]) is False  # asks the servers itself, and starts none


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
