"""The session marker: ``latest/session.json`` says which session last started writing here.

A session writes the marker (a fresh id, when it started) into ``<reports-dir>/latest/`` before
it runs anything; its report.json carries the same id, and the folder that replaces ``latest/``
at its end holds the marker again, marked finished. ``harness gate`` refuses a report.json whose
id is not the marker's: a session that stopped before writing its reports (a usage error, an
INTERNALERROR, a full disk) leaves the previous session's report.json beside its own newer
marker, and that old report must not pass tonight's gate. A session that cannot write its
marker (a full disk) removes the previous one, and the gate refuses a report naming a session
whose marker is missing.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Optional

from harness import storage

FILENAME = "session.json"
SCHEMA = "harness.session/1"
MAX_BYTES = 4096


class MarkerError(OSError):
    """The marker cannot be written (the message is one line saying what to do)."""


def new_id(started: float) -> str:
    """A session's id: when it started (UTC) and 12 random hex digits."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{secrets.token_hex(6)}"


def marker(session_id: str, started: float, finished: bool) -> dict:
    return {"schema": SCHEMA, "session_id": session_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "finished": finished}


def start(reports_dir: Path, session_id: str, started: float) -> Path:
    """Write ``<reports-dir>/latest/session.json`` for a session that starts now (MarkerError:
    one line naming the folder and the system's reason)."""
    latest = Path(reports_dir) / "latest"
    try:
        if latest.is_symlink() or (latest.exists() and not latest.is_dir()):
            raise MarkerError(f"--reports-dir {reports_dir}: {latest} exists and is not a "
                              f"folder; move it away")
        latest.mkdir(parents=True, exist_ok=True)
        return storage.write_json(latest / FILENAME, marker(session_id, started, False))
    except MarkerError:
        raise
    except OSError as exc:
        raise MarkerError(f"--reports-dir {reports_dir}: cannot mark the session's start "
                          f"in {latest / FILENAME} ({why(exc)}){_unmark(latest)}; free space or "
                          f"pass a folder this user can write (--reports-dir DIR)") from None


def _unmark(latest: Path) -> str:
    """Remove the previous session's marker (a removal needs no space), so that `harness gate`
    refuses the previous report.json; "" when done, else the words saying it could not be."""
    try:
        os.unlink(latest / FILENAME)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f", nor remove the previous one ({why(exc)}): `harness gate` would pass it"
    return ""


def why(exc: OSError) -> str:
    """The system's reason for ``exc`` in a few words (``No space left on device``)."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def read(folder: Path) -> Optional[dict]:
    """The marker in ``folder`` (None when there is none); a ValueError when it is not one."""
    path = Path(folder) / FILENAME
    if not path.exists():
        return None
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES} bytes, not a session marker")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a session marker ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
        raise ValueError(f"{path}: not a session marker (no session_id)")
    return data


def problem(folder: Path, report: dict) -> Optional[str]:
    """One line when the report.json in ``folder`` is not the latest session's; None when it is
    (or when neither the report nor the folder names a session: a hand-made or older report)."""
    try:
        data = read(folder)
    except (OSError, ValueError) as exc:
        return f"{exc}; rerun the session"
    if data is None:
        if report.get("session_id") is None:
            return None     # written by no marking session: a hand-made or older report
        return (f"{Path(folder) / FILENAME}: missing, though the report names its session "
                f"({report['session_id']!r}): the last session could not mark its start (see "
                f"its log: a full disk?) or the report was copied without it; run the session "
                f"again")
    reported = report.get("session_id")
    if reported == data["session_id"]:
        return None
    return (f"the last session (id {data['session_id']!r}, started {data.get('started')}) did "
            f"not finish: it wrote no report, and {Path(folder) / 'report.json'} is an older "
            f"session's (id {reported!r}); see that session's log for why it stopped (a usage "
            f"error, an INTERNALERROR, a full disk), fix it and run it again")
