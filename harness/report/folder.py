"""The reports folder: checked once before a session runs, and ``latest/`` replaced whole.

:func:`check_reports_dir` turns a ``--reports-dir`` that cannot hold reports (a file, a read-only
folder, a broken history store) into one line before any test runs, instead of a traceback at the
session's end. :func:`replace_folder` writes a folder's new content into a temporary folder beside
it and renames it into place, so ``latest/`` always holds one session's reports, never a mix.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Callable, TypeVar

from harness import storage
from harness.report.history import FILENAME, History, HistoryError

T = TypeVar("T")


class ReportsDirError(HistoryError):
    """``--reports-dir`` cannot hold reports (the message is one line saying what to change)."""


def _refuse(path: Path, why: str) -> ReportsDirError:
    return ReportsDirError(f"--reports-dir {path}: {why}; pass a folder this user can write "
                           f"(--reports-dir DIR)")


def check_reports_dir(path: Path) -> Path:
    """Raise ReportsDirError (one line) unless ``path`` is, or can be made, a writable folder
    whose history store (if any) is usable; return ``path``."""
    path = check_folder(path)
    History(path / FILENAME).check()
    return path


def check_folder(path: Path) -> Path:
    """Raise ReportsDirError (one line) unless ``path`` is, or can be made, a writable folder."""
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise _refuse(path, f"{parent} is a file, not a folder")
        if parent.is_dir():
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = storage.temp_path(path / "write-check")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise _refuse(path, f"cannot write there ({os.strerror(exc.errno) if exc.errno else exc})") from None
    return path


def replace_folder(target: Path, fill: Callable[[Path], T]) -> T:
    """Call ``fill(folder)`` on a fresh temporary folder beside ``target``, then put that folder
    in ``target``'s place (the old one is removed). A failure or a kill inside ``fill`` leaves
    ``target`` as it was; the temporary is removed now or by the next write beside it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    storage.clean_stale(target.parent)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ReportsDirError(f"{target}: exists and is not a folder; move it away")
    tmp = storage.temp_path(target)
    os.mkdir(tmp, 0o777)  # the umask applies, as for any folder
    try:
        result = fill(tmp)
        old = storage.temp_path(target)
        try:
            os.rename(target, old)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            old = None
        try:
            os.rename(tmp, target)
        except OSError:
            if old is not None:
                os.rename(old, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # what stays is removed by the next write here
        raise
    if old is not None:
        shutil.rmtree(old)
    return result
