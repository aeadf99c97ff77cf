"""The watcher inside a pytest session: a ``CommandSpec(..., stop_on_fail=True)`` has its
output (or the log file it names) judged line by line while it runs, against the session's bars,
and is stopped on the first failing verdict, so a nightly fails in minutes instead of hours.

The log file a command names is looked at each time the command prints a line (a command that
prints nothing while it writes its log is judged when it ends, as without ``stop_on_fail``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from harness.watch.follower import Follower
from harness.watch.watcher import Settings, Watch, stopped_text


def stop_rule(spec, book, patterns, cwd: Path) -> Callable[[str], Optional[str]]:
    """A function of each output line: why the command must stop now, or None. ``book`` is the
    session's BarBook (None outside a session: the bundled bars, the profile chosen by the log's
    dataset)."""
    auto = book is None
    if auto:
        from harness.watch.bars import bar_book
        book = bar_book("smoke", [], [], cwd)
    source = cwd / spec.log if spec.log else Path(f"output of {spec.argv[0]}")
    settings = Settings(book=book, fmt=spec.log_format, patterns=patterns if spec.log_format is None
                        else None, dataset=spec.dataset, auto_profile=auto, init_dirs=(cwd,))
    watch = Watch(str(source), settings, say=lambda line: None)
    follower = Follower(source, wait_for_file=True) if spec.log else None

    def judge(line: str) -> Optional[str]:
        for text in _all(follower) if follower is not None else [line]:
            watch.feed(text)
        if not watch.should_stop():
            return None
        failed = "; ".join(f"FAIL {v.id}: {v.line()}" for v in watch.verdicts if not v.passed)
        return f"{failed}; {stopped_text(watch.record)}"
    return judge


def _all(follower: Follower) -> list:
    """Every complete line the log holds now."""
    lines: list = []
    while True:
        got = follower.poll()
        if not got:
            return lines
        lines += got
