"""A child process group owned by the harness: started, read, and ended whole.

``OwnedProcess(argv, cwd, env)`` starts ``argv`` (no shell) in a new session, so the command and
everything it starts share one process group; its standard output and error are merged into one
pipe. Interface::

    with OwnedProcess(argv, cwd, env) as proc:       # OSError when it cannot start
        for piece in proc.lines(timeout=seconds):    # bytes, each at most max_line bytes
            ...
    proc.returncode     # the command's exit status (negative: the signal that ended it)
    proc.timed_out      # True when lines() ended the group because ``timeout`` passed

- ``lines(timeout=None)`` yields raw output pieces: a line with its ending, or a part of a long
  line (at most ``max_line`` bytes; a piece not ending in ``\\n`` is continued by the next). It
  stops at end of output, or when the command has exited and :data:`DRAIN_S` more seconds have
  passed (a background process holding the pipe open, a ``tensorboard &``, cannot keep it
  reading), or when ``timeout`` seconds since the start have passed (then it stops the group and
  sets ``timed_out``). It never waits on a read more than :data:`POLL_S` before checking these.
- ``stop(grace_s=STOP_GRACE_S)`` ends the whole group: SIGTERM, then SIGKILL to whatever is left
  after ``grace_s`` seconds; it reaps the command, closes the pipe, and is idempotent.
- leaving the ``with`` block always calls ``stop()``: at the end of a run, on an exception, on
  KeyboardInterrupt (Ctrl-C), so no process of the group outlives it.
- :func:`group_members` lists the live (not zombie) processes of a group (from /proc).

The command is not reaped until ``stop()`` (its exit is seen with ``waitid(WNOWAIT)``), so its
process id, which is the group's id, cannot be reused by another process while the group is
signalled.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

MAX_LINE = 64 << 10     # bytes: a longer line is yielded in pieces of this size
READ_BYTES = 64 << 10   # one read from the pipe
DRAIN_S = 2.0           # output read after the command exited, while something holds the pipe
POLL_S = 0.1            # longest wait on the pipe before looking at the clock and the command
STOP_GRACE_S = 5.0      # between SIGTERM and SIGKILL
_PROC = Path("/proc/self/stat")


def group_members(pgid: int) -> list:
    """The process ids of the live (not zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:          # it ended while listed
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class OwnedProcess:
    """A command and every process it starts, as one process group (see the module doc)."""

    def __init__(self, argv, cwd=None, env=None, max_line: int = MAX_LINE) -> None:
        self.argv = list(argv)
        self.max_line = max_line
        self.timed_out = False
        self.returncode: Optional[int] = None
        self._exited = False
        self._stopped = False
        self.started = time.monotonic()
        self._proc = subprocess.Popen(self.argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        self.pid = self.pgid = self._proc.pid

    def __enter__(self) -> "OwnedProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def exited(self) -> bool:
        """Whether the command itself has exited (it is not reaped until stop())."""
        if not self._exited:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:      # reaped already
                info = True
            self._exited = info is not None
        return self._exited

    def lines(self, timeout: Optional[float] = None) -> Iterator[bytes]:
        """The command's output in pieces of at most ``max_line`` bytes (see the module doc)."""
        fd = self._proc.stdout.fileno()
        pending = bytearray()
        drain_until, ended = None, False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                exited = self.exited()
                if timeout is not None and now - self.started >= timeout and not exited:
                    self.timed_out = True
                    self.stop()
                    break
                if drain_until is None and exited:
                    drain_until = now + DRAIN_S
                if exited and (ended or now >= drain_until):
                    break
                if ended:                     # output closed, the command still running
                    time.sleep(POLL_S)
                    continue
                if not selector.select(POLL_S):
                    continue
                chunk = os.read(fd, READ_BYTES)
                ended = not chunk
                pending += chunk
                yield from self._pieces(pending)
        if pending:
            yield bytes(pending)

    def _pieces(self, pending: bytearray) -> Iterator[bytes]:
        """Whole lines (and max_line parts of long ones) taken from the front of ``pending``."""
        start = 0
        while True:
            end = pending.find(b"\n", start, start + self.max_line)
            if end < 0 and len(pending) - start < self.max_line:
                break
            end = end + 1 if end >= 0 else start + self.max_line
            yield bytes(pending[start:end])
            start = end
        del pending[:start]

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """End the whole group (SIGTERM, SIGKILL after ``grace_s``), reap the command, close
        the pipe. Safe to call more than once."""
        if self._stopped:
            return
        try:
            if self._signal(signal.SIGTERM):
                deadline = time.monotonic() + grace_s
                while self._alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self._alive():
                    self._signal(signal.SIGKILL)
                    deadline = time.monotonic() + grace_s
                    while self._alive() and time.monotonic() < deadline:
                        time.sleep(0.05)
        finally:
            self.returncode = self._proc.wait()
            self._proc.stdout.close()
            self._stopped = True

    def _signal(self, sig) -> bool:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:      # nothing of the group is left
            return False
        return True

    def _alive(self) -> bool:
        """Whether any process of the group is still running (zombies not counted)."""
        if not _PROC.exists():     # no /proc: the unreaped command counts (SIGKILL after the grace)
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return False
            return True
        return bool(group_members(self.pgid))
