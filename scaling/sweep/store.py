"""The SQLite store of a sweep: one row per finished run, safe against ``kill -9`` and shared workers.

Three tables:

- ``meta(key, value)``: ``schema_version``, the sweep's configuration (JSON), the git revision;
- ``runs``: one row per finished run (a :class:`RunRecord`), keyed by its cell and by its ``run_id``
  (a hash of the cell and the sweep's fixed settings, :func:`run_id`: the same run has the same id in
  any database), written in one transaction with ``INSERT OR IGNORE``: a row is there completely or
  not at all, and never twice;
- ``claims``: the runs a live worker is training now, so a second worker on the same database takes
  other cells. A claim whose process is gone (killed) is taken over; a finished run deletes its claim
  in the same transaction that records it.

The database runs in WAL mode with a busy timeout, so workers (processes) on one machine can share it.
SQLite's locking is unreliable on network file systems: keep the file on a local disk. Databases of
schema version 1 (no per-role constants in the key) are migrated in place when opened.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from scaling.errors import ScalingError

SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 60.0

_CELL_COLUMNS = ("parameterization", "optimizer", "width", "log2_lr", "seed", "scales")
_KEY = ", ".join(_CELL_COLUMNS)
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,  -- hash of the cell and the sweep's fixed settings
    parameterization TEXT NOT NULL, optimizer TEXT NOT NULL, width INTEGER NOT NULL, log2_lr REAL NOT NULL,
    seed INTEGER NOT NULL,
    scales TEXT NOT NULL,     -- per-role constants (RoleScales) as canonical JSON, '' for none
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
CREATE TABLE claims (run_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, since REAL NOT NULL);
"""
RUN_COLUMNS = ("run_id", *_CELL_COLUMNS, "lr", "train_loss", "val_loss", "diverged", "steps", "seconds", "flops",
               "worker", "finished_at")
"""The columns of the ``runs`` table, in order."""


def canonical_scales(scales: Mapping[str, Mapping[str, float]] | str | None) -> str:
    """Per-role constants as the canonical JSON of a run's key (``''`` when there are none)."""
    if isinstance(scales, str):
        return scales
    kept = {kind: {role: float(v) for role, v in sorted(roles.items())}
            for kind, roles in sorted((scales or {}).items()) if roles}
    return json.dumps(kept, sort_keys=True) if kept else ""


class Cell(NamedTuple):
    """One point of the grid: what tells one run of a sweep from another."""

    parameterization: str
    optimizer: str
    width: int
    log2_lr: float
    seed: int
    scales: str = ""  # RoleScales as canonical JSON (canonical_scales), '' for none

    @property
    def lr(self) -> float:
        """The base learning rate ``2 ** log2_lr``."""
        return float(2.0**self.log2_lr)

    def scales_dict(self) -> dict[str, dict[str, float]]:
        """The per-role constants as a dict (empty for none)."""
        return json.loads(self.scales) if self.scales else {}

    def __str__(self) -> str:
        scales = f" scales={self.scales}" if self.scales else ""
        return f"{self.parameterization} {self.optimizer} w={self.width} lr=2^{self.log2_lr:g} seed={self.seed}{scales}"


def run_id(fixed: Mapping[str, Any], cell: Cell) -> str:
    """A run's identity: a hash of its cell and the settings every run of its sweep shares.

    Deterministic, so a rerun, a second worker or another machine's shard names the same run alike.
    """
    text = json.dumps({"fixed": fixed, "cell": cell._asdict()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RunRecord:
    """One finished run, from training to the database to the CSV: its cell and what it measured.

    ``train_loss`` is the mean of the last ``last_k`` training losses and ``val_loss`` the loss on the
    data's fixed validation batches after training, both ``nan`` if the run diverged; ``steps`` the
    steps completed; ``flops`` the training FLOPs (forward and backward, counted on the first step by
    ``torch.utils.flop_counter.FlopCounterMode`` and multiplied by the steps).
    """

    cell: Cell
    train_loss: float
    val_loss: float
    diverged: bool
    steps: int
    seconds: float
    flops: float

    def row(self) -> dict[str, Any]:
        """The record as one flat dict: the cell's fields, then the measurements (a CSV row)."""
        return {**self.cell._asdict(), **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "cell"}}


CSV_COLUMNS = (*_CELL_COLUMNS, *(f.name for f in fields(RunRecord) if f.name != "cell"))


def write_csv(records: Iterable[RunRecord], path: str | os.PathLike[str]) -> Path:
    """Every record as one CSV row (columns :data:`CSV_COLUMNS`)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in records:
            row = r.row()
            writer.writerow({**row, "diverged": int(r.diverged), "seconds": f"{r.seconds:.3f}",
                             "flops": f"{r.flops:.6g}"})
    return path


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
        if self.path.exists() and not self.path.is_file():
            raise ScalingError(f"{self.path} is a directory, not a sweep database; pass a file path as --db")
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ScalingError(f"cannot create {self.path}: {self.path.parent} is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise ScalingError(f"cannot create {self.path}: a part of its folder is a file ({e})") from e
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._fixed: dict[str, Any] | None = None
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
        if row[0] == "1":
            self._migrate_from_1()
        elif row[0] != str(SCHEMA_VERSION):
            raise ScalingError(
                f"{self.path} was made by a version of scaling with sweep schema version {row[0]}; this one "
                f"reads version {SCHEMA_VERSION}. Use a new --db path, or the scaling version that made it."
            )

    def _migrate_from_1(self) -> None:
        """Version 1 kept one sweep-wide ``scales`` among the fixed settings: move it into every run's key."""
        meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        fixed = json.loads(meta.get("fixed", "{}"))
        scales = canonical_scales(fixed.pop("scales", None))
        old = self._con.execute("SELECT parameterization, optimizer, width, log2_lr, seed, lr, train_loss, val_loss, "
                                "diverged, steps, seconds, flops, worker, finished_at FROM runs").fetchall()
        self._con.execute("DROP TABLE runs")
        self._con.execute("DROP TABLE claims")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            if "CREATE TABLE meta" not in statement:
                self._con.execute(statement)
        for r in old:
            cell = Cell(r[0], r[1], r[2], r[3], r[4], scales)
            values = (run_id(fixed, cell), *cell, *r[5:])
            self._con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(values))})", values)
        updates = {"schema_version": str(SCHEMA_VERSION)}
        if "fixed" in meta:
            updates["fixed"] = json.dumps(fixed, sort_keys=True)
        if "config" in meta:
            config = json.loads(meta["config"])
            config["scales"] = [config.get("scales") or {}]
            updates["config"] = json.dumps(config, sort_keys=True)
        for key, value in updates.items():
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

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
        self._fixed = None

    def fixed(self) -> dict[str, Any]:
        """The fixed settings of the sweep this database holds (``{}`` before any sweep started)."""
        if self._fixed is None:
            row = self._con.execute("SELECT value FROM meta WHERE key = 'fixed'").fetchone()
            self._fixed = json.loads(row[0]) if row else {}
        return self._fixed

    def run_id(self, cell: Cell) -> str:
        """The :func:`run_id` of ``cell`` in this database's sweep."""
        return run_id(self.fixed(), cell)

    def done(self) -> set[Cell]:
        """The cells with a finished run."""
        rows = self._con.execute(f"SELECT {_KEY} FROM runs").fetchall()
        return {Cell(*r) for r in rows}

    def count(self) -> int:
        """The number of finished runs."""
        return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def claim(self, cell: Cell) -> bool:
        """Claim ``cell`` for this process: False if it is done or a live process is training it."""
        host, pid, rid = socket.gethostname(), os.getpid(), self.run_id(cell)
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM runs WHERE run_id = ?", (rid,)).fetchone():
                return False
            holder = con.execute("SELECT host, pid FROM claims WHERE run_id = ?", (rid,)).fetchone()
            if holder is not None and tuple(holder) != (host, pid) and _alive(*holder):
                return False
            con.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (rid, host, pid, time.time()))
        return True

    def release(self, cell: Cell) -> None:
        """Drop this process's claim on ``cell`` (a run that did not finish)."""
        with self.transaction() as con:
            con.execute("DELETE FROM claims WHERE run_id = ? AND pid = ?", (self.run_id(cell), os.getpid()))

    def record(self, record: RunRecord, worker: str | None = None) -> bool:
        """Store a finished run and drop its claim, atomically.

        Returns False if the run already had a row (that row is kept; nothing is duplicated).
        """
        cell, rid = record.cell, self.run_id(record.cell)
        values = (
            rid, *cell, cell.lr, _finite_or_none(record.train_loss), _finite_or_none(record.val_loss),
            int(record.diverged), record.steps, record.seconds, record.flops, worker or self.worker,
            time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        with self.transaction() as con:
            cur = con.execute(f"INSERT OR IGNORE INTO runs VALUES ({', '.join('?' * len(values))})", values)
            con.execute("DELETE FROM claims WHERE run_id = ?", (rid,))
        return cur.rowcount == 1

    def insert_rows(self, rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows of another database's ``runs`` table (columns :data:`RUN_COLUMNS`, as
        :func:`read_database` gives them) in one transaction, keeping any run already here; returns how
        many were new."""
        marks = ", ".join("?" * len(RUN_COLUMNS))
        statement = f"INSERT OR IGNORE INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})"
        added = 0
        with self.transaction() as con:
            for row in rows:
                added += con.execute(statement, tuple(row)).rowcount
        return added

    def runs(self) -> list[RunRecord]:
        """Every finished run, in grid order."""
        rows = self._con.execute(
            f"SELECT {_KEY}, train_loss, val_loss, diverged, steps, seconds, flops FROM runs ORDER BY {_KEY}"
        ).fetchall()
        nan = math.nan
        return [
            RunRecord(Cell(*r[:6]), nan if r[6] is None else r[6], nan if r[7] is None else r[7], bool(r[8]),
                      r[9], r[10], r[11])
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


def read_database(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """The meta table and every row of the runs table (columns :data:`RUN_COLUMNS`, in grid order) of a
    sweep database, opened read-only: nothing is written to it, not even a migration."""
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a sweep database" if path.is_dir() else "no sweep database there"
        raise ScalingError(f"{path}: {what}")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "runs"} <= tables:
                raise ScalingError(f"{path} is not a sweep database (no meta and runs tables)")
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            version = meta.get("schema_version")
            if version == "1":
                raise ScalingError(f"{path} has sweep schema version 1: open it once with this version to migrate "
                                   f"it (scaling sweep --db {path} --report-only), then merge")
            if version != str(SCHEMA_VERSION):
                raise ScalingError(f"{path} has sweep schema version {version}; this version of scaling reads "
                                   f"version {SCHEMA_VERSION}")
            rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY {_KEY}").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise ScalingError(f"{path} is not a usable sweep database ({e})") from e
    return meta, rows
