"""Progress of long runs, shown where the user looks: a live bar (images/s and ETA, tqdm) on a
terminal, one short line per epoch in a log (a CI job, a pipe), nothing when disabled.

Where the text goes is a :class:`ProgressOut`: standard error by default (the ``harness`` CLI);
under pytest the plugin gives one that writes through pytest's terminal reporter past its
output capture, so a default ``pytest suites/baseline`` shows progress within the first epoch.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional


@dataclass(frozen=True)
class ProgressOut:
    """``write(text)`` puts ``text`` on the user's screen as is (no newline added); ``live()``:
    that screen is a terminal, where a bar is redrawn in place, rather than a log, which gets
    one line per epoch (asked when a bar starts: pytest's terminal comes after its options)."""

    write: Callable[[str], None]
    live: Callable[[], bool]


def stderr_out() -> ProgressOut:
    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()
    def live() -> bool:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return ProgressOut(write, live)


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled: bool = True, *, epochs: int = 1,
                 out: Optional[ProgressOut] = None) -> Iterator[Optional[Callable[[int], None]]]:
    """Yield ``update(n_images)`` for ``total`` images over ``epochs`` equal epochs, or None
    when disabled."""
    if not enabled:
        yield None
        return
    from harness.escape import terminal

    out, desc = out or stderr_out(), terminal(desc)   # a run's label is the user's text
    if not out.live():
        yield EpochLines(total, desc, max(1, epochs), out.write).update
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False,
              file=_Stream(out.write), mininterval=0.5, dynamic_ncols=True) as bar:
        yield bar.update


class _Stream:
    """The file tqdm writes to."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def flush(self) -> None:
        pass   # ``write`` flushes


class EpochLines:
    """One line when the first batch is done (training has begun) and one at the end of each
    epoch: images/s, time so far and the time left."""

    def __init__(self, total: int, desc: str, epochs: int, write: Callable[[str], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.desc, self.epochs, self.write, self.clock = total, desc, epochs, write, clock
        self.per_epoch = max(1, total // epochs)
        self.seen, self.done = 0, 0
        self.start = clock()

    def update(self, n: int) -> None:
        first = self.seen == 0
        self.seen += n
        if first:
            self.write(f"{self.desc}: training, {self.epochs} epoch{'s' * (self.epochs != 1)} of "
                       f"{self.per_epoch:,} images\n")
        epoch = min(self.epochs, self.seen // self.per_epoch)
        if epoch > self.done:
            self.done = epoch
            self.write(self._line())

    def _line(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.seen / elapsed
        left = max(self.total - self.seen, 0) / rate
        return (f"{self.desc}: epoch {self.done}/{self.epochs} done, {_count(rate)} img/s, "
                f"{_clock(elapsed)} elapsed, {_clock(left)} left\n")


def _count(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
