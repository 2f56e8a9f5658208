"""The resident runner: a process that keeps the CLI's modules imported, one per user, installation and
cgroup; the console script's default (RUNNER_RESIDENT=0 turns it off).

Each `runner` command then costs a small client (wire, client) and a fork of the resident process
(server), which runs the command with the caller's arguments, directory, environment and terminal:
what a command spends before its first request shrinks from the imports of pydantic, the manifest's
models, click and yaml (about 250 ms) to a few milliseconds. Without a resident process, or with one
started from other code, a command runs in its own process as always and starts one for next time.
"""
