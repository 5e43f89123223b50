"""The SQLite store of a sweep: one row per finished run, safe against ``kill -9`` and shared workers.

Three tables:

- ``meta(key, value)``: ``schema_version``, the sweep's configuration (JSON), the git revision;
- ``runs``: one row per finished cell, ``UNIQUE`` on the cell, written in one transaction with
  ``INSERT OR IGNORE``: a row is there completely or not at all, and never twice;
- ``claims``: the cells a live worker is training now, so a second worker on the same database takes
  other cells. A claim whose process is gone (killed) is taken over; a finished run deletes its claim
  in the same transaction that records it.

The database runs in WAL mode with a busy timeout, so workers (processes) on one machine can share it.
SQLite's locking is unreliable on network file systems: keep the file on a local disk.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from scaling.errors import ScalingError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0

_CELL = "parameterization TEXT NOT NULL, optimizer TEXT NOT NULL, width INTEGER NOT NULL, " \
        "log2_lr REAL NOT NULL, seed INTEGER NOT NULL"
_KEY = "parameterization, optimizer, width, log2_lr, seed"
_WHERE = "parameterization = ? AND optimizer = ? AND width = ? AND log2_lr = ? AND seed = ?"
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    {_CELL},
    lr REAL NOT NULL,
    train_loss REAL,          -- mean of the last k training losses, NULL if diverged
    val_loss REAL,            -- NULL if diverged
    diverged INTEGER NOT NULL,
    steps INTEGER NOT NULL,   -- steps completed
    seconds REAL NOT NULL,
    flops REAL NOT NULL,
    worker TEXT NOT NULL,     -- host:pid
    finished_at TEXT NOT NULL,
    UNIQUE ({_KEY})
);
CREATE TABLE claims ({_CELL}, host TEXT NOT NULL, pid INTEGER NOT NULL, since REAL NOT NULL, PRIMARY KEY ({_KEY}));
"""


class Cell(NamedTuple):
    """One point of the grid: the key of a run."""

    parameterization: str
    optimizer: str
    width: int
    log2_lr: float
    seed: int

    @property
    def lr(self) -> float:
        """The base learning rate ``2 ** log2_lr``."""
        return float(2.0**self.log2_lr)

    def __str__(self) -> str:
        return f"{self.parameterization} {self.optimizer} w={self.width} lr=2^{self.log2_lr:g} seed={self.seed}"


@dataclass(frozen=True)
class RunRecord:
    """A finished run as stored: its cell and what it measured (losses are ``nan`` where NULL)."""

    cell: Cell
    train_loss: float
    val_loss: float
    diverged: bool
    steps: int
    seconds: float
    flops: float


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _alive(host: str, pid: int) -> bool:
    """Whether the process holding a claim may still run (another machine's: assume it does)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepStore:
    """An open sweep database. ``SweepStore(path)`` creates it if missing and checks its schema version."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._retry_locked(lambda: self._con.execute("PRAGMA journal_mode = WAL"))
            with self.transaction():
                self._init_schema()
        except sqlite3.DatabaseError as e:
            self._con.close()
            if "locked" in str(e):
                raise ScalingError(f"{self.path} stayed locked by another process for {BUSY_TIMEOUT_S:g} s") from e
            raise ScalingError(f"{self.path} is not a usable sweep database ({e}); pass a new --db path") from e
        except BaseException:
            self._con.close()
            raise

    @staticmethod
    def _retry_locked(action: Callable[[], object]) -> None:
        """Switching to WAL takes a lock the busy timeout does not always wait for: retry a while."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                action()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _init_schema(self) -> None:
        tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            for statement in filter(str.strip, _SCHEMA.split(";")):  # not executescript: it would COMMIT
                self._con.execute(statement)
            self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        row = self._con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
            if "meta" in tables else None
        if row is None:
            raise ScalingError(f"{self.path} is an SQLite file but not a sweep database (no schema version); "
                               "pass a new --db path")
        if row[0] != str(SCHEMA_VERSION):
            raise ScalingError(
                f"{self.path} was made by a version of scaling with sweep schema version {row[0]}; this one "
                f"reads version {SCHEMA_VERSION}. Use a new --db path, or the scaling version that made it."
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock for the whole block."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def meta(self) -> dict[str, str]:
        """The meta table as a dict."""
        return dict(self._con.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Write meta entries (non-strings as JSON)."""
        with self.transaction() as con:
            for key, value in values.items():
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))

    def done(self) -> set[Cell]:
        """The cells with a finished run."""
        rows = self._con.execute(f"SELECT {_KEY} FROM runs").fetchall()
        return {Cell(*r) for r in rows}

    def count(self) -> int:
        """The number of finished runs."""
        return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def claim(self, cell: Cell) -> bool:
        """Claim ``cell`` for this process: False if it is done or a live process is training it."""
        host, pid = socket.gethostname(), os.getpid()
        with self.transaction() as con:
            if con.execute(f"SELECT 1 FROM runs WHERE {_WHERE}", cell).fetchone():
                return False
            holder = con.execute(f"SELECT host, pid FROM claims WHERE {_WHERE}", cell).fetchone()
            if holder is not None and tuple(holder) != (host, pid) and _alive(*holder):
                return False
            con.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*cell, host, pid, time.time()))
        return True

    def release(self, cell: Cell) -> None:
        """Drop this process's claim on ``cell`` (a run that did not finish)."""
        with self.transaction() as con:
            con.execute(f"DELETE FROM claims WHERE {_WHERE} AND pid = ?", (*cell, os.getpid()))

    def record(self, cell: Cell, result: Any) -> bool:
        """Store a finished run (a :class:`scaling.train.RunResult`) and drop its claim, atomically.

        Returns False if the cell already had a row (that row is kept; nothing is duplicated).
        """
        values = (
            *cell, cell.lr, _finite_or_none(result.train_loss), _finite_or_none(result.val_loss),
            int(result.diverged), result.steps, result.seconds, result.flops, self.worker,
            time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        with self.transaction() as con:
            cur = con.execute(f"INSERT OR IGNORE INTO runs VALUES ({', '.join('?' * len(values))})", values)
            con.execute(f"DELETE FROM claims WHERE {_WHERE}", cell)
        return cur.rowcount == 1

    def runs(self) -> list[RunRecord]:
        """Every finished run, in grid order."""
        rows = self._con.execute(
            f"SELECT {_KEY}, train_loss, val_loss, diverged, steps, seconds, flops FROM runs ORDER BY {_KEY}"
        ).fetchall()
        nan = math.nan
        return [
            RunRecord(Cell(*r[:5]), nan if r[5] is None else r[5], nan if r[6] is None else r[6], bool(r[7]),
                      r[8], r[9], r[10])
            for r in rows
        ]

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def open_existing(path: str | os.PathLike[str]) -> SweepStore:
    """Open a sweep database that must exist already (for analysis and plotting)."""
    if not Path(path).is_file():
        raise ScalingError(f"no sweep database at {path}: run `scaling sweep --db {path} ...` first")
    return SweepStore(path)
