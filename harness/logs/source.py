"""A log's bytes as numbered lines, and the tally of what a parser understood.

Any line ending counts (``\\r\\n``, ``\\n`` or a lone ``\\r``, as progress bars write); bytes that
are not UTF-8 are decoded as U+FFFD and counted; a last line without a line ending belongs to a
run still writing and is set aside, never parsed (half a number is not a number).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

_BREAK = re.compile(rb"\r\n|\r|\n")
EXAMPLES = 5          # lines not understood that a record quotes
EXAMPLE_CHARS = 120


class LogError(ValueError):
    """A log the harness cannot read; the message names the path and what to pass instead."""


@dataclass(frozen=True)
class LogLines:
    path: str
    lines: tuple          # ((line number from 1, text), ...) of complete lines
    undecodable: int = 0  # complete lines holding bytes that are not UTF-8
    unfinished: Optional[str] = None  # the last line when no line ending closes it

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.lines)


def split_lines(data: bytes, path: str = "<bytes>") -> LogLines:
    parts = _BREAK.split(data)
    tail = parts.pop()  # after the last break: b"" when the data ends with one
    lines, undecodable = [], 0
    for number, raw in enumerate(parts, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            undecodable += 1
        lines.append((number, text))
    unfinished = tail.decode("utf-8", errors="replace") if tail else None
    return LogLines(path, tuple(lines), undecodable, unfinished)


def read_lines(path: Path) -> LogLines:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LogError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    return split_lines(data, str(path))


@dataclass
class Tally:
    """How many lines a parser understood, and the first few it did not."""

    understood: int = 0
    blank: int = 0
    not_understood: int = 0
    examples: list = field(default_factory=list)

    def hit(self) -> None:
        self.understood += 1

    def miss(self, number: int, text: str) -> None:
        if not text.strip():
            self.blank += 1
            return
        self.not_understood += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"line {number}: {text.strip()[:EXAMPLE_CHARS]}")

    def notes(self, lines: LogLines) -> dict:
        return {"log_path": lines.path, "lines_total": len(lines.lines),
                "lines_understood": self.understood, "lines_not_understood": self.not_understood,
                "not_understood_examples": list(self.examples),
                "undecodable_lines": lines.undecodable,
                "unfinished_last_line": (lines.unfinished[:EXAMPLE_CHARS]
                                         if lines.unfinished is not None else None)}
