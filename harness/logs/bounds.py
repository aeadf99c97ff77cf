"""Bounds on what a log from elsewhere can make the harness hold, and the values it may claim.

A log is untrusted input: its size, the length of one line, the number of arguments, states,
epochs and curve points it spells out, and the range of the accuracies it prints are all bounded
here, and what was cut or refused is said in the record's notes (never dropped silently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

MiB = 1024 * 1024
MAX_LOG_BYTES = 64 * MiB          # one log file (a research log of 16 states is ~1 MB)
MAX_LOG_LINES = 4_000_000         # its lines (each costs a parser a few microseconds)
MAX_EVENT_CHARS = 64 * 1024       # one MLLOG event or summary.csv row: read only up to this
MAX_ARGUMENTS = 500               # run arguments kept (argparse namespaces hold ~100)
MAX_VALUE_CHARS = 4096            # one argument value read as a literal; longer ones are cut
CUT_VALUE_CHARS = 200             # how much of a cut value is kept, as text
MAX_STATES = 256                  # pruning states of one log
MAX_EPOCHS = 10_000               # epochs of one state
MAX_CURVE_POINTS = 512            # points of the learning curve inside epoch 0 a record keeps
MAX_LISTED = 20                   # problems, dropped epochs and cut values listed in the notes

# A number as logs print it. Its digits are bounded and it ends where they end, so no two
# quantifiers compete for the same characters: matching is linear in the line.
NUMBER = r"([-+]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][-+]?[0-9]{1,4})?(?![0-9])|nan|inf)"


MAX_INT_DIGITS = 12               # an epoch, state or count a log prints


def read_count(text: "str | None", what: str) -> tuple:
    """(the whole number ``text`` spells, None) or (None, why it is refused): ASCII digits only
    (a superscript or another script's digit is no number a log means), at most MAX_INT_DIGITS
    (Python refuses to read, or takes long over, thousands of digits)."""
    if text is None:
        return None, f"{what}: no value"
    digits = text.strip()
    if not digits or len(digits) > MAX_INT_DIGITS or not all("0" <= c <= "9" for c in digits):
        return None, (f"{what} {clip(digits, 40)!r} ({len(digits):,} characters) is not a whole "
                      f"number of 1 to {MAX_INT_DIGITS} ASCII digits: not read")
    return int(digits), None


def percent_problem(value: Any, what: str = "accuracy") -> Optional[str]:
    """Why ``value`` (an accuracy in percent, after any fraction->percent conversion) cannot be
    one, or None when it can: a finite number in [0, 100]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{what} {value!r} is not a number"
    if not math.isfinite(value):
        return f"{what} {value} is not a finite number"
    if not 0.0 <= value <= 100.0:
        return f"{what} {value:.6g}% is outside 0-100%"
    return None


def add_argument(args: dict, key: str, value: Any, cut: Listed) -> bool:
    """Keep the run argument ``key`` unless MAX_ARGUMENTS are kept already; a string value over
    MAX_VALUE_CHARS is kept as its head. What was cut is listed in ``cut``."""
    if key not in args and len(args) >= MAX_ARGUMENTS:
        cut.add(f"arguments after the first {MAX_ARGUMENTS} (from {clip(key, 80)!r} on): not read")
        return False
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        cut.add(f"{clip(key, 80)}: a value of {len(value):,} characters, over the "
                f"{MAX_VALUE_CHARS:,} kept; kept as its first {CUT_VALUE_CHARS}")
        value = value[:CUT_VALUE_CHARS] + "..."
    args[key] = value
    return True


def clip(text: str, limit: int = 120) -> str:
    """The first ``limit`` characters of ``text`` (stripped), marked when cut."""
    head = text[:limit + 64].strip()   # never a copy of a whole long line
    return head[:limit] + "..." if len(head) > limit or len(text) > limit + 64 else head


@dataclass
class Listed:
    """The first MAX_LISTED entries of a list that may grow without bound, and how many more."""

    items: list = field(default_factory=list)
    total: int = 0

    def add(self, text: str) -> None:
        self.total += 1
        if len(self.items) < MAX_LISTED:
            self.items.append(text)

    def as_list(self) -> list:
        more = self.total - len(self.items)
        return list(self.items) + ([f"... and {more:,} more"] if more else [])

    def __bool__(self) -> bool:
        return self.total > 0


class EvenCurve:
    """At most MAX_CURVE_POINTS of a stream of points, evenly spaced over the stream (every k-th,
    k doubling as it grows), the first and the last always kept; ``seen`` counts them all."""

    def __init__(self, cap: int = MAX_CURVE_POINTS) -> None:
        self.cap, self.stride, self.seen = max(2, cap), 1, 0
        self.kept: list = []
        self.last: Any = None

    def add(self, point: Any) -> None:
        if self.seen % self.stride == 0:
            self.kept.append(point)
            if len(self.kept) >= self.cap:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1
        self.last = point

    @property
    def cut(self) -> bool:
        return self.stride > 1

    def points(self) -> list:
        if self.seen and (self.seen - 1) % self.stride != 0:
            return self.kept + [self.last]
        return list(self.kept)


def curve_cut(where: str, curve: EvenCurve) -> str:
    return (f"{where}: {len(curve.points()):,} of the {curve.seen:,} points of the curve inside "
            f"epoch 0 kept, evenly spaced (the first and the last among them)")
