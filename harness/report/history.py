"""The history store: every session's verdicts in ``<reports-dir>/history.sqlite``, and each
verdict's trend against the sessions before it.

One row per session (time, git commit, profile, exit status, environment) and one row per
verdict per session (the verdict's fields and its JSON). The view ``verdict_history`` joins them:
one row per verdict per session with the commit, profile, environment and time. SQLite's own
transactions make each append atomic (a killed process leaves the session whole or absent), which
is why this store does not go through :mod:`harness.storage`'s file renames.

A trend compares a verdict with the previous session of the same profile that judged it: the
change of the observed value, the last session in which it passed ("last green") and whether it
is a *regression* (passed last time, fails now).
"""
from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

FILENAME = "history.sqlite"
SERIES_LENGTH = 30  # sessions kept in a trend's series (the HTML sparkline)

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
CREATE VIEW IF NOT EXISTS verdict_history AS
    SELECT v.session_id, s.created, s.finished, s.git_commit, s.profile, s.environment,
           v.verdict_id, v.observed, v.op, v.threshold, v.unit, v.gap, v.passed
    FROM verdicts v JOIN sessions s ON s.id = v.session_id;
"""


class HistoryError(RuntimeError):
    """The history file exists but is not a harness history (the message names the file)."""


@dataclass(frozen=True)
class Entry:
    """One verdict in one past (or the current) session."""

    session: int
    created: str
    git_commit: Optional[str]
    observed: Optional[float]
    passed: bool


@dataclass(frozen=True)
class Trend:
    """A verdict against its history: previous entry, last passing entry, change, regression."""

    verdict_id: str
    previous: Optional[Entry]
    last_green: Optional[Entry]      # the latest passing entry, this session included
    change: Optional[float]          # observed now minus observed in the previous session
    regression: bool                 # passed in the previous session, fails now
    series: list = field(default_factory=list)  # [[created, observed, passed]], oldest first

    def to_dict(self) -> dict:
        return asdict(self)


class History:
    """The SQLite store of verdicts per session."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.executescript(_DDL)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise HistoryError(f"{self.path}: not a harness history store ({exc}); move it away "
                               f"or pass another --reports-dir") from None
        return conn

    def check(self) -> None:
        """Raise HistoryError now if the file exists and is not a history store."""
        if self.path.exists():
            with closing(self._connect()) as conn:
                conn.execute("SELECT count(*) FROM verdict_history").fetchone()

    def append(self, report: dict) -> int:
        """Store the session of ``report`` (report.json's dict) and its verdicts; return its id."""
        env = report.get("environment", {})
        with closing(self._connect()) as conn, conn:
            cur = conn.execute(
                "INSERT INTO sessions (finished, created, git_commit, profile, exit_status, environment)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (report["timings"]["finished"], report["created"], env.get("git_commit"),
                 report["profile"], report.get("exit_status"), json.dumps(env, sort_keys=True)))
            session = int(cur.lastrowid)
            conn.executemany(
                "INSERT INTO verdicts (session_id, verdict_id, observed, op, threshold, unit, gap,"
                " passed, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(session, v["id"], _finite(v["observed"]), v["op"], v["threshold"], v["unit"],
                  _finite(v["gap"]), int(bool(v["passed"])), json.dumps(v, default=str))
                 for v in report["verdicts"]])
        return session

    def entries(self, profile: str, verdict_id: str, up_to_session: int) -> list[Entry]:
        """The verdict's entries in sessions of ``profile`` up to ``up_to_session``, oldest first."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT session_id, created, git_commit, observed, passed FROM verdict_history"
                " WHERE profile = ? AND verdict_id = ? AND session_id <= ?"
                " ORDER BY session_id, rowid", (profile, verdict_id, up_to_session)).fetchall()
        return [Entry(int(s), c, g, o, bool(p)) for s, c, g, o, p in rows]

    def sessions(self, profile: Optional[str] = None) -> list[dict]:
        query = "SELECT id, created, git_commit, profile, exit_status FROM sessions"
        args: tuple = ()
        if profile is not None:
            query, args = query + " WHERE profile = ?", (profile,)
        with closing(self._connect()) as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [dict(zip(("id", "created", "git_commit", "profile", "exit_status"), r)) for r in rows]

    def trend(self, profile: str, verdict_id: str, session: int) -> Trend:
        entries = self.entries(profile, verdict_id, session)
        current = [e for e in entries if e.session == session]
        earlier = [e for e in entries if e.session < session]
        now = current[-1] if current else None
        previous = earlier[-1] if earlier else None
        green = [e for e in entries if e.passed]
        change = None
        if now and previous and now.observed is not None and previous.observed is not None:
            change = now.observed - previous.observed
        regression = bool(now and previous and previous.passed and not now.passed)
        series = [[e.created, e.observed, e.passed] for e in entries[-SERIES_LENGTH:]]
        return Trend(verdict_id, previous, green[-1] if green else None, change, regression, series)


def record_session(report: dict, reports_dir: Path) -> dict:
    """Append ``report``'s session to ``<reports-dir>/history.sqlite`` and annotate ``report``:
    ``report["history"]`` holds each verdict's trend, each verdict dict gains ``regression``, and
    ``report["counts"]["regressions"]`` counts them. Returns ``report["history"]``."""
    history = History(Path(reports_dir) / FILENAME)
    session = history.append(report)
    trends = {v["id"]: history.trend(report["profile"], v["id"], session) for v in report["verdicts"]}
    for v in report["verdicts"]:
        v["regression"] = trends[v["id"]].regression
    regressions = sorted(vid for vid, t in trends.items() if t.regression)
    report["counts"]["regressions"] = len(regressions)
    report["history"] = {"store": str(history.path), "session": session,
                         "sessions_of_profile": len(history.sessions(report["profile"])),
                         "regressions": regressions,
                         "verdicts": {vid: t.to_dict() for vid, t in trends.items()}}
    return report["history"]


def _finite(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
