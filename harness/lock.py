"""A cross-process exclusive lock on a file (fcntl.flock) that says who holds it.

The runs store holds one per run key while it looks for a stored run and trains a missing one,
so concurrent sessions or xdist workers never train the same run twice: the second one waits,
says for whom (``waiting for run 3f2a...: held by pid 4242 on host-a since 02:14:07``) and then
reuses the stored run. The history store holds one while it appends a session. The lock dies
with its process, so a killed session never leaves anything locked; the holder note beside it
(``<lock>.holder``) is informational only.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

POLL_SECONDS = 0.2


class LockTimeout(TimeoutError):
    """The lock stayed held for longer than the caller would wait; the message names the holder."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def exclusive(path: Path, what: str = "", timeout: Optional[float] = None,
              on_wait: Callable[[str], None] = _say) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    When another process holds it, ``on_wait`` gets one line naming the holder, then this waits
    (for ever, or ``timeout`` seconds before raising :class:`LockTimeout`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try(fd):
            on_wait(f"waiting for {what or path}: {holder(path)}")
            _wait(fd, path, what, timeout)
        _write_holder(path, what)
        try:
            yield path
        finally:
            _remove_holder(path)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


def _wait(fd: int, path: Path, what: str, timeout: Optional[float]) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while not _try(fd):
        if time.monotonic() >= deadline:
            raise LockTimeout(f"{what or path} is still locked after {timeout:g} s: {holder(path)}; "
                              f"wait for that process to finish, or stop it")
        time.sleep(POLL_SECONDS)


def _holder_path(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def holder_note(path: Path) -> Optional[dict]:
    """The holder note of the lock at ``path`` (``pid``, ``host``, ``since``, ``what``), or None
    when there is none or it cannot be read. A note outlives a killed holder: it says who held
    the lock last, not that the lock is held."""
    try:
        info = json.loads(_holder_path(Path(path)).read_text(encoding="utf-8"))
        return {"pid": int(info["pid"]), "host": str(info["host"]), "since": float(info["since"]),
                "what": str(info.get("what", ""))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, in words (from its holder note)."""
    info = holder_note(path)
    if info is None:
        return "held by another process (no holder note)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
    return f"held by pid {info['pid']} on {info['host']} since {since}"


def _write_holder(path: Path, what: str) -> None:
    note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "what": what}
    tmp = _holder_path(path).with_name(f".{path.name}.holder.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(note), encoding="utf-8")
    os.replace(tmp, _holder_path(path))


def _remove_holder(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _holder_path(path).unlink()
