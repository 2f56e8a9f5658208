"""The one SQLite database under RUNNER_HOME that every runner process shares: how to open it and how to
take a write transaction up front. Each kind of record (runs, schedules) keeps its own tables in it.

SQLite's own errors never leave this module: a full disk (or any other failure of the database) becomes a
RecordsError that names the database and, when its disk is full, says so (runner.errors.DiskFullError),
so every command reports it in one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.errors import DiskFullError, RecordsError

# Below this many free bytes the disk counts as full, whatever SQLite's words for it were.
_FULL_BELOW_BYTES = 1024 * 1024


def records_error(database: Path, error: sqlite3.Error | OSError) -> RecordsError:
    """The RunnerError for a failure of the records database at database."""
    text = str(error)
    full = "full" in text or getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    try:
        free = shutil.disk_usage(database.parent).free
    except OSError:
        free = None
    if full or (free is not None and free < _FULL_BELOW_BYTES):
        left = f" ({free} bytes free)" if free is not None else ""
        return DiskFullError(
            f"the disk holding RUNNER_HOME ({database.parent}) is full{left}: cannot write the run records "
            f"{database} ({text})",
            hint="free some space on that disk (or point RUNNER_HOME elsewhere) and run the command again",
        )
    return RecordsError(f"the run records {database} failed: {text}")


class _Connection(sqlite3.Connection):
    """A connection whose failures are RecordsErrors naming the database."""

    database_path = Path()

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except (sqlite3.Error, OSError) as error:
            raise records_error(self.database_path, error) from error

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except (sqlite3.Error, OSError) as error:
            raise records_error(self.database_path, error) from error

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except (sqlite3.Error, OSError) as error:
            raise records_error(self.database_path, error) from error


def connect(database: Path, schema: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout (short transactions from many processes), with the
    schema's tables created if missing. Autocommit: transactions are taken explicitly (`immediate`)."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_private(database)
        db = sqlite3.connect(
            database,
            timeout=30,
            isolation_level=None,
            check_same_thread=check_same_thread,
            factory=_Connection,
        )
    except (sqlite3.Error, OSError) as error:
        raise records_error(database, error) from error
    assert isinstance(db, _Connection)
    db.database_path = database
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.executescript(schema)
    return db


def _create_private(database: Path) -> None:
    """The database file, made private to its owner (0600) before SQLite opens it: runs hold manifests
    and messages. SQLite gives its -wal and -shm files the database's mode."""
    os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    with contextlib.suppress(OSError):  # a database made by an earlier runner, or not ours to change
        database.chmod(0o600)


def add_missing_columns(db: sqlite3.Connection, table: str, columns: Iterable[str]) -> None:
    """Add the columns a database made by an earlier runner lacks (NULL in its rows)."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for column in columns:
        if column in present:
            continue
        try:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except RecordsError as error:  # another process added it first
            if "duplicate column" not in error.message:
                raise


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken up front: what is read inside cannot change before it commits."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except RecordsError:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
