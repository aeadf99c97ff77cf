"""The history store: every session's verdicts in ``<reports-dir>/history.sqlite``, and each
verdict's trend against the sessions before it.

One row per session (time, git commit, profile, device, exit status, environment) and one row per
verdict per session (the verdict's fields, the identity of what it judged, and its JSON). The view
``verdict_history`` joins them. SQLite's transactions make each append atomic; a lock file beside
the store (``history.sqlite.lock``, held with :mod:`filelock`) serialises the harness's sessions,
and ``history.sqlite.holder`` names the process holding it, so a waiting session can say whom it
waits for.

A trend compares a verdict with the previous session of the same profile on the same device that
judged it, and says how the two relate (:data:`RELATIONS`): only the *same run* (the same input,
the same bar) can regress; a moved bar or another input is shown as such, never as a regression.
The input of a verdict is read from its evidence: an engine run's spec, a training log's source
and path, a checkpoint's path.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from filelock import FileLock, Timeout

from harness import storage
from harness.escape import dumps, json_safe
from harness.report import guard

FILENAME = "history.sqlite"
SERIES_LENGTH = 30  # sessions kept in a trend's series (the HTML sparkline)
LOCK_TIMEOUT_S = 600.0

FIRST, SAME, BAR_MOVED, ANOTHER_INPUT = "first session", "same run", "bar moved", "another input"
RELATIONS = (FIRST, SAME, BAR_MOVED, ANOTHER_INPUT)

_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    finished    REAL NOT NULL,
    created     TEXT NOT NULL,
    git_commit  TEXT,
    profile     TEXT NOT NULL,
    exit_status INTEGER,
    environment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    verdict_id  TEXT NOT NULL,
    observed    REAL,
    op          TEXT NOT NULL,
    threshold   REAL NOT NULL,
    unit        TEXT NOT NULL,
    gap         REAL,
    passed      INTEGER NOT NULL,
    verdict     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_id ON verdicts (verdict_id, session_id);
"""
# Columns added after the first release; a store without them gains them (old rows: NULL input,
# which compares as another input, so no regression is claimed across the upgrade).
_ADDED = {"sessions": {"device": "TEXT"}, "verdicts": {"input": "TEXT", "tolerance": "REAL"}}
_VIEW = """
CREATE VIEW verdict_history AS
    SELECT v.session_id, s.created, s.finished, s.git_commit, s.profile, s.device, s.environment,
           v.verdict_id, v.input, v.observed, v.op, v.threshold, v.tolerance, v.unit, v.gap, v.passed
    FROM verdicts v JOIN sessions s ON s.id = v.session_id;
"""


class HistoryError(RuntimeError):
    """The history store cannot be used (the message is one line naming the file)."""


class HistoryLocked(HistoryError):
    """Another process holds the store longer than we wait; the store itself is intact."""


@dataclass(frozen=True)
class Entry:
    """One verdict in one past (or the current) session."""

    session: int
    created: str
    git_commit: Optional[str]
    observed: Optional[float]
    passed: bool
    input: Optional[str] = None       # what was judged (None: recorded before identities)
    op: str = ""
    threshold: Optional[float] = None
    tolerance: Optional[float] = None

    @property
    def bar(self) -> tuple:
        return (self.op, self.threshold, self.tolerance or 0.0)


@dataclass(frozen=True)
class Trend:
    """A verdict against its history: previous entry, how it relates, last passing entry, change."""

    verdict_id: str
    previous: Optional[Entry]
    last_green: Optional[Entry]      # the latest passing entry, this session included
    change: Optional[float]          # observed now minus previous (same input only)
    regression: bool                 # the same run passed in the previous session, fails now
    relation: str = FIRST            # one of RELATIONS
    series: list = field(default_factory=list)  # [[created, observed, passed]], oldest first

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


def relation(now: Entry, previous: Optional[Entry]) -> str:
    """How ``now`` relates to ``previous``: first session, same run, bar moved, another input."""
    if previous is None:
        return FIRST
    if previous.input is None or now.input != previous.input:
        return ANOTHER_INPUT
    return SAME if previous.bar == now.bar else BAR_MOVED


def trend_of(verdict_id: str, earlier: list, now: Entry) -> Trend:
    """The trend of ``now`` against ``earlier`` entries (oldest first, same profile and device)."""
    previous = earlier[-1] if earlier else None
    kind = relation(now, previous)
    green = [e for e in [*earlier, now] if e.passed]
    change = None
    if kind in (SAME, BAR_MOVED) and now.observed is not None and previous.observed is not None:
        change = now.observed - previous.observed
    regression = kind == SAME and previous.passed and not now.passed
    series = [[e.created, e.observed, e.passed] for e in [*earlier, now][-SERIES_LENGTH:]]
    return Trend(verdict_id, previous, green[-1] if green else None, change, bool(regression),
                 kind, series)


def device_key(environment: dict) -> str:
    """The device a session's trends are keyed by: the GPU's name on CUDA, else the device type."""
    device = str(environment.get("device") or "unknown")
    kind = device.split(":")[0]
    return str(environment.get("device_name") or device) if kind == "cuda" else kind


def input_of(evidence: dict, runs: dict) -> str:
    """What a verdict judged, from its evidence (``runs``: the report's runs by run id): an engine
    run's spec (its hash), a log's source and path, a run folder's source and folder (its
    ``run`` evidence), a checkpoint's path; else the session's one run when it judged one
    (``--harness-from-log``, ``--harness-from-run``); "" when unnamed."""
    parts = []
    for key, value in evidence.items():
        if (key == "run_id" or key.endswith("_run")) and isinstance(value, str):
            parts.append(_run_input(value, runs.get(value)))
    if not parts and isinstance(evidence.get("run"), str):
        parts.append(f"run {evidence['run']}")
    if not parts and isinstance(evidence.get("path"), str):
        parts.append(f"file {evidence['path']}")
    if not parts and len(runs) == 1:
        (run_id, run), = runs.items()
        parts.append(_run_input(run_id, run))
    return "; ".join(parts)


def _run_input(run_id: str, run: Optional[dict]) -> str:
    if run is None:
        return f"run {run_id}"
    if run.get("source") == "engine":
        spec = {k: v for k, v in (run.get("spec") or {}).items() if k != "label"}
        digest = hashlib.sha256(dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        return f"spec {digest}"
    log = run.get("log") or {}
    if str(run.get("source")).startswith("log:"):
        return f"{run.get('source')} {log.get('log_path') or run_id}"
    return f"{run.get('source')} {run_id}"      # a run folder's id names its folder, not its log alone


def _notify(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


class History:
    """The SQLite store of verdicts per session."""

    def __init__(self, path: Path, lock_timeout: float = LOCK_TIMEOUT_S,
                 notify: Callable[[str], None] = _notify) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.notify = notify
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.holder_path = self.path.with_name(self.path.name + ".holder")
        self.max_steps = guard.MAX_STEPS
        self.skipped: list[str] = []      # stored rows not read back (harness.report.guard)

    # --- the lock between harness sessions -------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator["History"]:
        """Hold the store's lock file for the block; wait for another holder, saying whom."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.notify(f"{self.path} is in use by {self._holder()}; waiting up to "
                        f"{self.lock_timeout:g} s for it")
            try:
                lock.acquire(timeout=self.lock_timeout)
            except Timeout:
                raise HistoryLocked(
                    f"{self.path}: still in use by {self._holder()} after {self.lock_timeout:g} s; "
                    f"the store is intact: run again when that session has ended") from None
        try:
            storage.write_text(self.holder_path, dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                 "command": " ".join(sys.argv)[:300]}) + "\n")
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.holder_path)
            lock.release()

    def _holder(self) -> str:
        try:
            data = json.loads(self.holder_path.read_text(encoding="utf-8"))
            since = time.strftime("%H:%M:%S", time.localtime(float(data["since"])))
            return (f"process {int(data['pid'])} on {data['host']} (since {since}: "
                    f"{str(data['command'])[:120]})")
        except (OSError, ValueError, KeyError, TypeError):
            return f"another process (it holds {self.lock_path})"

    # --- the database ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection with the schema in place; SQLite's errors as one-line HistoryErrors."""
        try:
            with closing(sqlite3.connect(self.path, timeout=self.lock_timeout)) as conn:
                guard.bound(conn, self.max_steps)
                foreign = guard.foreign_objects(conn, _VIEW)
                if foreign:
                    raise HistoryError(guard.refusal(self.path, foreign))
                conn.executescript(_DDL)
                _migrate(conn)
                yield conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise HistoryLocked(
                    f"{self.path}: locked by another process for {self.lock_timeout:g} s "
                    f"(sqlite: {exc}); the store is intact: run again when that process has "
                    f"ended") from None
            if "interrupted" in str(exc):
                raise HistoryError(
                    f"{self.path}: a query ran past {self.max_steps:,} SQLite steps and was "
                    f"stopped (a view or table built to never end?); move the store away or pass "
                    f"another --reports-dir") from None
            raise self._not_a_store(exc) from None
        except sqlite3.IntegrityError as exc:
            raise HistoryError(f"{self.path}: {exc}: a process wrote to it without the harness's "
                               f"lock ({self.lock_path}); run again") from None
        except sqlite3.DatabaseError as exc:
            raise self._not_a_store(exc) from None

    def _not_a_store(self, exc: Exception) -> HistoryError:
        return HistoryError(f"{self.path}: not a harness history store ({exc}); move it away "
                            f"or pass another --reports-dir")

    def check(self) -> None:
        """Raise HistoryError now if the file exists and is not a usable history store."""
        if self.path.exists():
            with self.locked(), self._db() as conn:
                conn.execute("SELECT count(*) FROM verdict_history").fetchone()

    def next_session(self) -> int:
        """The id the next appended session gets (call it under :meth:`locked`)."""
        with self._db() as conn:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'sessions'").fetchone()
            top = conn.execute("SELECT max(id) FROM sessions").fetchone()[0]
        ids = [row[0] if row else 0, top or 0]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise HistoryError(f"{self.path}: the sessions' ids are not integers ({ids[0]!r:.40}, "
                               f"{ids[1]!r:.40}); move the store away or pass another --reports-dir")
        return max(ids) + 1

    def append(self, report: dict, session: Optional[int] = None) -> int:
        """Store ``report``'s session (as ``session`` when given) and its verdicts; return its id."""
        env = report.get("environment", {})
        runs = {r["run_id"]: r for r in report.get("runs", [])}
        with self._db() as conn, conn:
            cur = conn.execute(
                "INSERT INTO sessions (id, finished, created, git_commit, profile, device,"
                " exit_status, environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session, report["timings"]["finished"], report["created"], env.get("git_commit"),
                 report["profile"], device_key(env), report.get("exit_status"),
                 dumps(env, sort_keys=True)))
            session = int(cur.lastrowid)
            conn.executemany(
                "INSERT INTO verdicts (session_id, verdict_id, input, observed, op, threshold,"
                " tolerance, unit, gap, passed, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(session, v["id"], input_of(v.get("evidence") or {}, runs), *_row(v),
                  dumps(v)) for v in json_safe(report["verdicts"])])
        return session

    def entries(self, profile: str, device: str, verdict_id: str, before: int) -> list[Entry]:
        """The verdict's entries in sessions of ``profile`` on ``device`` before session
        ``before``, oldest first."""
        with self._db() as conn:
            rows = conn.execute(guard.entry_query(
                "WHERE profile = ? AND device = ? AND verdict_id = ? AND session_id < ?"
                " ORDER BY session_id, rowid"), (profile, device, verdict_id, before)).fetchall()
        entries = []
        for row in rows:
            values, why = guard.checked(row)
            if values is None:
                self.skipped.append(why)
                continue
            s, c, g, o, p, i, op, t, tol = values
            entries.append(Entry(s, c, g, o, bool(p), i, op, t, tol))
        return entries

    def count(self, profile: str) -> int:
        """How many sessions of ``profile`` the store holds."""
        with self._db() as conn:
            return int(conn.execute("SELECT count(*) FROM sessions WHERE profile = ?",
                                    (profile,)).fetchone()[0])

    def sessions(self, profile: Optional[str] = None) -> list[dict]:
        query = "SELECT id, created, git_commit, profile, device, exit_status FROM sessions"
        args: tuple = ()
        if profile is not None:
            query, args = query + " WHERE profile = ?", (profile,)
        with self._db() as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        keys = ("id", "created", "git_commit", "profile", "device", "exit_status")
        return [dict(zip(keys, r)) for r in rows]

    def annotate(self, report: dict) -> int:
        """Give ``report`` its trends as the next session (call under :meth:`locked`): each
        verdict gains ``regression``, ``report["history"]`` holds the trends and
        ``report["counts"]["regressions"]`` counts them. Returns the session id to append as."""
        session = self.next_session()
        env = report.get("environment", {})
        device, runs = device_key(env), {r["run_id"]: r for r in report.get("runs", [])}
        trends = {}
        for v in report["verdicts"]:
            now = _entry(session, report, v, input_of(v.get("evidence") or {}, runs))
            trends[v["id"]] = trend_of(v["id"], self.entries(report["profile"], device, v["id"],
                                                             session), now)
            v["regression"] = trends[v["id"]].regression
        regressions = sorted(vid for vid, t in trends.items() if t.regression)
        report["counts"]["regressions"] = len(regressions)
        report["history"] = {"store": str(self.path), "session": session, "device": device,
                             "sessions_of_profile": self.count(report["profile"]) + 1,
                             "regressions": regressions,
                             "verdicts": {vid: t.to_dict() for vid, t in trends.items()}}
        if self.skipped:
            report["history"]["skipped"] = guard.named(self.skipped)
            self.notify(f"{self.path}: {len(self.skipped)} stored row(s) skipped, not read into "
                        f"the trends (first: {self.skipped[0]}); the rest of the store is used")
        return session


def _row(v: dict) -> tuple:
    return (v["observed"], v["op"], v["threshold"], v.get("tolerance") or 0.0, v["unit"], v["gap"],
            int(v["passed"] is True))


def _entry(session: int, report: dict, v: dict, what: str) -> Entry:
    observed, _, threshold, tolerance, _, _, passed = _row(json_safe(v))
    return Entry(session, report["created"], report.get("environment", {}).get("git_commit"),
                 observed, bool(passed), what, v["op"], threshold, tolerance)


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns of :data:`_ADDED` and (re)create the view when a store lacks them."""
    changed = False
    for table, columns in _ADDED.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                changed = True
    if changed:
        for sid, env in conn.execute("SELECT id, environment FROM sessions WHERE device IS NULL").fetchall():
            conn.execute("UPDATE sessions SET device = ? WHERE id = ?", (device_key(_json(env)), sid))
    view = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'verdict_history'"
                        ).fetchone()
    if view is None or "v.input" not in view[0]:
        conn.execute("DROP VIEW IF EXISTS verdict_history")
        conn.execute(_VIEW)
    conn.commit()


def _json(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def record_session(report: dict, reports_dir: Path) -> dict:
    """Annotate ``report`` with its trends and append its session to
    ``<reports-dir>/history.sqlite`` (without writing reports: see
    :func:`harness.report.writer.publish_session`). Returns ``report["history"]``."""
    history = History(Path(reports_dir) / FILENAME)
    with history.locked():
        session = history.annotate(report)
        history.append(report, session)
    return report["history"]
