"""A log's bytes as numbered lines, and the tally of what a parser understood.

Any line ending counts (``\\r\\n``, ``\\n`` or a lone ``\\r``, as progress bars write); bytes that
are not UTF-8 are decoded as U+FFFD and counted; a last line without a line ending belongs to a
run still writing and is set aside, never parsed (half a number is not a number).

A log is read whole up to :data:`~harness.logs.bounds.MAX_LOG_BYTES` (a larger one is refused in
one line) and its lines are decoded one at a time as a parser walks them, so the memory a log
takes is its size, not its size times the per-line overhead of Python objects. Only regular
files are read (a FIFO or a device would never end); inside a folder from elsewhere, symbolic
links are not followed.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from harness.logs.bounds import MAX_LOG_BYTES, MAX_LOG_LINES, MiB, Listed, clip

_BREAK = re.compile(rb"\r\n|\r|\n")
EXAMPLES = 5          # lines not understood that a record quotes
EXAMPLE_CHARS = 120
_TAIL_BYTES = 4096    # of an unfinished last line, kept
_LOG_HINT = "pass a shorter log (e.g. without the per-batch lines after epoch 0)"


class LogError(ValueError):
    """A log the harness cannot read; the message names the path and what to pass instead."""


@dataclass(frozen=True)
class LogLines:
    path: str
    data: bytes = field(repr=False)  # the log's bytes; its complete lines end at ``end``
    end: int = 0
    count: int = 0        # complete lines
    undecodable: int = 0  # complete lines holding bytes that are not UTF-8
    unfinished: Optional[str] = None  # the last line when no line ending closes it

    def __iter__(self) -> Iterator[tuple]:
        """(line number from 1, text) of each complete line, decoded as it is reached."""
        start, number = 0, 0
        for brk in _BREAK.finditer(self.data, 0, self.end):
            number += 1
            yield number, self.data[start:brk.start()].decode("utf-8", errors="replace")
            start = brk.end()


def split_lines(data: bytes, path: str = "<bytes>") -> LogLines:
    data = bytes(data)
    end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1   # after the last break; 0: none
    count = data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)
    tail = data[end:end + _TAIL_BYTES]   # quoted, never parsed: its head is enough
    unfinished = tail.decode("utf-8", errors="replace") if tail else None
    return LogLines(path, data, end, count, _undecodable(data, end), unfinished)


def _undecodable(data: bytes, end: int) -> int:
    if data.isascii():
        return 0
    bad, start = 0, 0
    for brk in _BREAK.finditer(data, 0, end):
        try:
            data[start:brk.start()].decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
        start = brk.end()
    return bad


def read_lines(path: Path, *, follow_links: bool = True) -> LogLines:
    """The lines of the regular file ``path`` (at most MAX_LOG_BYTES). ``follow_links=False``
    refuses a symbolic link (for files inside a folder from elsewhere)."""
    lines = split_lines(read_regular(path, MAX_LOG_BYTES, follow_links=follow_links), str(path))
    if lines.count > MAX_LOG_LINES:
        raise LogError(f"{path}: {lines.count:,} lines, over the {MAX_LOG_LINES:,} a training log "
                       f"may have; {_LOG_HINT}")
    return lines


def read_regular(path: Path, limit: int, *, follow_links: bool = True, what: str = "a training log",
                 hint: str = _LOG_HINT) -> bytes:
    """The bytes of the regular file ``path``; a LogError names the size when it is over ``limit``,
    or says it is no regular file (a FIFO or a device would never end)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise LogError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LogError(f"{path}: not a regular file (a folder, FIFO or device); pass a log file")
        _check_size(path, info.st_size, limit, what, hint)
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise LogError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    _check_size(path, len(data), limit, what, hint)   # it grew while read: a run still writing
    return data


def _check_size(path: Path, size: int, limit: int, what: str, hint: str) -> None:
    if size > limit:
        raise LogError(f"{path}: {size:,} bytes ({size / MiB:.1f} MiB) is over the "
                       f"{limit / MiB:g} MiB {what} may have; {hint}")


def link_problem(path: Path) -> Optional[str]:
    """Why ``path``, a file inside a folder from elsewhere, is not read (a symbolic link, not a
    regular file), or None: it is a regular file there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{Path(path).name}: cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode):
        return (f"{Path(path).name} is a symbolic link (to {clip(os.readlink(path))}); "
                f"not followed: links inside a log folder are not read")
    if not stat.S_ISREG(info.st_mode):
        return f"{Path(path).name} is not a regular file; not read"
    return None


@dataclass
class Tally:
    """How many lines a parser understood, the first few it did not, and the values it refused."""

    understood: int = 0
    blank: int = 0
    not_understood: int = 0
    examples: list = field(default_factory=list)
    problems: Listed = field(default_factory=Listed)

    def hit(self) -> None:
        self.understood += 1

    def miss(self, number: int, text: str) -> None:
        if not text.strip():
            self.blank += 1
            return
        self.not_understood += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"line {number}: {clip(text, EXAMPLE_CHARS)}")

    def refuse(self, number: int, text: str, why: str) -> None:
        """A line that holds an impossible value: not understood, and the reason listed."""
        self.miss(number, text)
        self.problems.add(f"line {number}: {clip(text, EXAMPLE_CHARS)!r}: {why}")

    @classmethod
    def of(cls, parser, lines: LogLines) -> "Tally":
        """Feed every line to ``parser`` (``parser.line(number, text)`` True when understood,
        ``parser.problem`` the reason when it refused a value) and count what it did."""
        tally = cls()
        for number, text in lines:
            if parser.line(number, text):
                tally.hit()
            elif getattr(parser, "problem", None):
                tally.refuse(number, text, parser.problem)
            else:
                tally.miss(number, text)
        return tally

    def notes(self, lines: LogLines) -> dict:
        return {"log_path": lines.path, "lines_total": lines.count,
                "lines_understood": self.understood, "lines_not_understood": self.not_understood,
                "not_understood_examples": list(self.examples),
                "undecodable_lines": lines.undecodable,
                "unfinished_last_line": (lines.unfinished[:EXAMPLE_CHARS]
                                         if lines.unfinished is not None else None),
                "parse_problems": self.problems.as_list()}
