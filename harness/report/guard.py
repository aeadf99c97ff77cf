"""The history store comes from disk: what the harness trusts of it, and how far.

Three bounds (issue 22 item 6): every query of a connection runs within :data:`MAX_STEPS` SQLite
virtual-machine steps (a progress handler aborts it, so a view that never ends cannot hang a
session: a count of steps, not a clock); a store holding a view or trigger the harness did not
make is refused (they run code on every read or write); and each row read back is checked
column by column (its SQLite type, the length of its text) before it becomes an
:class:`~harness.report.history.Entry`: a row that breaks them is skipped and named, never a
TypeError at the session's end nor megabytes copied into report.json.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Optional

STEP = 1000                 # SQLite VM steps between two calls of the progress handler
MAX_STEPS = 200_000_000     # per connection: orders of magnitude above a real store's queries
MAX_TEXT = {"created": 64, "git_commit": 128, "op": 16, "input": 4096}
NUMBER, INTEGER, TEXT, NULL = ("real", "integer"), ("integer",), ("text",), ("null",)
# The columns an entry is read from, and the SQLite types each may hold.
COLUMNS = (("session_id", INTEGER), ("created", TEXT), ("git_commit", TEXT + NULL),
           ("observed", NUMBER + NULL), ("passed", INTEGER), ("input", TEXT + NULL),
           ("op", TEXT), ("threshold", NUMBER + NULL), ("tolerance", NUMBER + NULL))
MAX_NAMED = 20              # skipped rows named in the report (the rest counted)


def bound(conn: sqlite3.Connection, max_steps: int = MAX_STEPS) -> None:
    """Abort any statement of ``conn`` past ``max_steps`` VM steps in all (``interrupted``)."""
    calls = [0]

    def handler() -> int:
        calls[0] += 1
        return 1 if calls[0] * STEP > max_steps else 0
    conn.set_progress_handler(handler, STEP)


def _normal(sql: str) -> str:
    return " ".join(sql.replace(";", " ").split())


def foreign_objects(conn: sqlite3.Connection, own_view: str) -> list[str]:
    """The views and triggers in the store that are not the harness's (``own_view``: the SQL of
    its one view, ``verdict_history``; an older harness's version of it, without the ``input``
    column, is the harness's too and is replaced)."""
    found = []
    for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')"):
        if kind == "view" and name == "verdict_history" and isinstance(sql, str) and (
                _normal(sql) == _normal(own_view) or "input" not in sql):
            continue
        found.append(f"{kind} {name!r}")
    return found


def refusal(path: Path, found: list[str]) -> str:
    drops = "; ".join(f"DROP {f.split()[0].upper()} {f.split(maxsplit=1)[1]}" for f in found[:3])
    return (f"{path}: holds {', '.join(found[:3])}{' and more' if len(found) > 3 else ''}, which "
            f"the harness did not make (a view or trigger runs on every read or write); remove "
            f"{'it' if len(found) == 1 else 'them'} (sqlite3 {path} \"{drops}\") or move the store "
            f"away")


def entry_query(where: str) -> str:
    """SELECT each column of :data:`COLUMNS` (text cut past its bound), then each one's type
    and length, from ``verdict_history`` ``where`` ..."""
    values = [f"substr({c}, 1, {MAX_TEXT[c] + 1})" if c in MAX_TEXT else c for c, _ in COLUMNS]
    kinds = [f"typeof({c})" for c, _ in COLUMNS]
    return (f"SELECT verdict_id, {', '.join(values)}, {', '.join(kinds)} FROM verdict_history "
            f"{where}")


def checked(row: tuple) -> tuple[Optional[tuple], str]:
    """(the entry's values, "") for a row of :func:`entry_query`, or (None, why it is skipped)."""
    n = len(COLUMNS)
    verdict_id, values, kinds = row[0], row[1:n + 1], row[n + 1:]
    for (name, allowed), value, kind in zip(COLUMNS, values, kinds):
        if kind not in allowed:
            shown = str(value)[:40] if kind in ("text", "real", "integer") else f"a {kind}"
            return None, (f"session {values[0]!s:.20} verdict {str(verdict_id)[:80]!r}: {name} is "
                          f"{kind} {shown!r}, expected {' or '.join(allowed)}")
        if name in MAX_TEXT and isinstance(value, str) and len(value) > MAX_TEXT[name]:
            return None, (f"session {values[0]} verdict {str(verdict_id)[:80]!r}: {name} is longer "
                          f"than {MAX_TEXT[name]} characters")
    return tuple(values), ""


def named(skipped: list[str]) -> list[str]:
    """The skipped rows as the report names them: the first :data:`MAX_NAMED`, then a count."""
    more = len(skipped) - MAX_NAMED
    return skipped[:MAX_NAMED] + ([f"and {more} more rows"] if more > 0 else [])
