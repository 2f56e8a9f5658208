"""The one SQLite database under RUNNER_HOME that every runner process shares: how to open it and how to
take a write transaction up front. Each kind of record (runs, schedules) keeps its own tables in it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(database: Path, schema: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout (short transactions from many processes), with the
    schema's tables created if missing. Autocommit: transactions are taken explicitly (`immediate`)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(database, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.executescript(schema)
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken up front: what is read inside cannot change before it commits."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
