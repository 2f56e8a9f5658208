"""A worker of a multi-worker test job: proves the workers find each other, without TensorFlow.

Each worker reads TF_CONFIG (as MultiWorkerMirroredStrategy would), listens on its own address's port,
connects to every other worker's address and says hello, and writes what it heard to
$RUNNER_OUTPUTS/worker-<index>.txt. WORKERS_MODE changes that:
  crash       worker 1 exits 3 at once, the others sleep (to be stopped by the runner)
  crash-once  as crash in attempt 1; in later attempts every worker talks
  sleep       every worker sleeps (to be cancelled)
Standard library only: it runs under the process backend's python and in a plain python image.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

PATIENCE_SECONDS = 120.0


def greet(address: str, me: int) -> None:
    """Say hello to the worker at address, trying until it listens."""
    host, _, port = address.rpartition(":")
    give_up = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(f"hello from worker {me}\n".encode())
                return
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def listen(server: socket.socket, count: int, heard: list[str]) -> None:
    for _ in range(count):
        connection, _ = server.accept()
        with connection:
            heard.append(connection.makefile().readline().strip())


def main() -> int:
    config = json.loads(os.environ["TF_CONFIG"])
    me = int(config["task"]["index"])
    addresses = list(config["cluster"]["worker"])
    print(f"worker {me} of {len(addresses)} at {addresses[me]}", flush=True)
    mode = os.environ.get("WORKERS_MODE", "")
    first = os.environ.get("RUNNER_ATTEMPT") == "1"
    if mode == "crash" or (mode == "crash-once" and first):
        if me == 1:
            print("worker 1 crashes", flush=True)
            return 3
        time.sleep(600)
    if mode == "sleep":
        time.sleep(600)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", int(addresses[me].rpartition(":")[2])))
    server.listen()
    server.settimeout(PATIENCE_SECONDS)
    heard: list[str] = []
    listener = threading.Thread(target=listen, args=(server, len(addresses) - 1, heard))
    listener.start()
    for index, address in enumerate(addresses):
        if index != me:
            greet(address, me)
    listener.join()
    print("heard: " + ", ".join(sorted(heard)), flush=True)
    outputs = Path(os.environ["RUNNER_OUTPUTS"])
    (outputs / f"worker-{me}.txt").write_text("\n".join(sorted(heard)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
