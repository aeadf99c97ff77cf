"""Following a log file while a run writes it: complete lines as they are appended.

A :class:`Follower` reads what was appended since its last read, a bounded chunk at a time, and
yields each complete line (``\\n``, ``\\r\\n`` or a lone ``\\r`` ends one, as the log readers
count them). A last line without its line ending is held until it ends (half a number is not a
number); a line longer than :data:`MAX_LINE_BYTES` is yielded cut at that length, the rest of it
skipped, so memory stays bounded whatever the run prints. A truncated file (smaller than what
was read) is read again from its start; a rotated file (the path now names another file) is
read to its end, then the new file from its start; both are said through ``note``. It ends after
``idle_s`` seconds without a new line (None: never), or when its caller stops iterating.
"""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from harness.logs.source import LogError

CHUNK_BYTES = 1 << 16          # read at a time
MAX_LINE_BYTES = 1 << 16       # of one line kept; the rest of a longer line is skipped
POLL_S = 0.2                   # between looks at a file with nothing new


class Follower:
    """The complete lines appended to ``path`` (see the module doc)."""

    def __init__(self, path: Path, *, idle_s: Optional[float] = None, poll_s: float = POLL_S,
                 wait_for_file: bool = False, note: Callable[[str], None] = lambda text: None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.idle_s, self.poll_s, self.note = idle_s, poll_s, note
        self.clock, self.sleep = clock, sleep
        self.handle = None
        self.identity: Optional[tuple] = None
        self.offset = 0
        self.buffer = LineBuffer()
        self.ended_idle = False
        if not wait_for_file:
            self._open(missing_ok=False)

    # --- the file -------------------------------------------------------------------------
    def _open(self, missing_ok: bool) -> bool:
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            if missing_ok:
                return False
            raise LogError(f"{self.path}: no such file; pass the log the run writes (or "
                           f"--wait to wait for it to appear)") from None
        except OSError as exc:
            raise LogError(f"{self.path}: cannot read the log ({exc.strerror or exc})") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise LogError(f"{self.path}: not a regular file (a folder, FIFO or device); pass "
                           f"the log file the run writes")
        self.handle = os.fdopen(fd, "rb")
        self.identity, self.offset = (info.st_dev, info.st_ino), 0
        return True

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def _replaced(self) -> bool:
        """Whether the path now names another file (rotated) or a shorter one (truncated);
        the follower then reads from the start of what the path names now."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False                       # rotated away, the new one not there yet
        if (info.st_dev, info.st_ino) != self.identity:
            self.note(f"{self.path} was replaced (rotated): reading the new file from its start")
        elif info.st_size < self.offset:
            self.note(f"{self.path} was truncated to {info.st_size:,} bytes (it had "
                      f"{self.offset:,}): reading it again from its start")
        else:
            return False
        self.close()
        self.buffer.clear()
        return self._open(missing_ok=True)

    # --- the lines --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        last_new = self.clock()
        try:
            while True:
                lines = self.poll()
                if lines:
                    last_new = self.clock()
                    yield from lines
                    continue
                if self.idle_s is not None and self.clock() - last_new >= self.idle_s:
                    self.ended_idle = True
                    return
                self.sleep(self.poll_s)
        finally:
            self.close()

    def poll(self) -> list[str]:
        """The complete lines appended since the last poll (empty: nothing new yet)."""
        if self.handle is None and not self._open(missing_ok=True):
            return []
        data = self.handle.read(CHUNK_BYTES)
        if not data:
            if self._replaced():
                return self.poll()
            return []
        self.offset += len(data)
        return self._split(data)

    def _split(self, data: bytes) -> list[str]:
        return self.buffer.split(data)

    def unfinished(self) -> Optional[str]:
        """The last line so far when no line ending closed it yet."""
        return self.buffer.unfinished()


class LineBuffer:
    """Bytes in, complete lines out: the last line held until its ending comes, a line over
    MAX_LINE_BYTES cut there and the rest of it skipped."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.skipping = False          # inside the cut-off rest of a long line

    def clear(self) -> None:
        self.pending.clear()
        self.skipping = False

    def split(self, data: bytes) -> list[str]:
        out: list[str] = []
        start = 0
        for end in _breaks(data):
            self._take(data[start:end], out, ended=True)
            start = end + (2 if data[end:end + 2] == b"\r\n" else 1)
        if start < len(data):
            self._take(data[start:], out, ended=False)
        return out

    def _take(self, piece: bytes, out: list, ended: bool) -> None:
        if not self.skipping:
            room = MAX_LINE_BYTES - len(self.pending)
            self.pending += piece[:room]
            if len(piece) > room:
                out.append(self.pending.decode("utf-8", errors="replace") + " [line cut]")
                self.pending.clear()
                self.skipping = True
        if ended:
            if not self.skipping:
                out.append(self.pending.decode("utf-8", errors="replace"))
            self.pending.clear()
            self.skipping = False

    def unfinished(self) -> Optional[str]:
        return self.pending.decode("utf-8", errors="replace") if self.pending else None


def _breaks(data: bytes) -> Iterator[int]:
    """Where each line ending starts (``\\r\\n`` counts once)."""
    at = 0
    while True:
        n, r = data.find(b"\n", at), data.find(b"\r", at)
        if n < 0 and r < 0:
            return
        end = min(x for x in (n, r) if x >= 0)
        yield end
        at = end + (2 if data[end:end + 2] == b"\r\n" else 1)
