"""A run judged while it trains: lines in, verdicts out as soon as each is decided, and whether
the run should be stopped now.

:class:`Watch` takes the run's log a line at a time (:meth:`Watch.feed`), reads it again with the
harness's log readers when a line may change a verdict (:mod:`harness.watch.record`), asks every
check what it can decide now (:mod:`harness.watch.checks`) and says each verdict in one line.
A failing verdict dooms the run; :meth:`Watch.should_stop` says when to stop it: at once, except
that a failing init file (judged before the first step) lets the epoch under way finish its
evaluation, so the report holds what the first epoch shows too (``stop_now`` stops at once).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from harness.escape import terminal
from harness.expect import Verdict
from harness.record import RunRecord
from harness.watch.checks import CHECKS, Context
from harness.watch.record import LiveRecord

WAITS_FOR_EVALUATION = ("init",)     # checks decided mid-epoch whose failure waits for its end


@dataclass(frozen=True)
class Settings:
    """How a run is watched (validated by the command line that builds it)."""

    book: object                      # harness.suite.BarBook
    fmt: Optional[str] = None
    patterns: object = None           # harness.logs.declared.LogPatterns
    dataset: Optional[str] = None
    auto_profile: bool = True
    init_dirs: tuple = ()
    keep_going: bool = False
    stop_now: bool = False


def verdict_line(v: Verdict) -> str:
    return terminal(f"{'pass' if v.passed else 'FAIL'} {v.id}: {v.line()}")


class Watch:
    """One watched run (see the module doc); ``say`` prints a line."""

    def __init__(self, source: str, settings: Settings, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.live = LiveRecord(source, settings.fmt, settings.patterns, settings.dataset)
        self.ctx = Context(settings.book, settings.init_dirs, settings.auto_profile)
        self.say = say
        self.verdicts: list[Verdict] = []
        self.notes: list[str] = []
        self.failed_at: Optional[int] = None      # evaluated epochs when the first verdict failed
        self.wait_for_evaluation = False
        self.full_said = False

    @property
    def record(self) -> Optional[RunRecord]:
        return self.live.record

    def feed(self, line: str) -> None:
        if self.live.add(line):
            self.judge()
        elif self.live.full and not self.full_said:
            self.full_said = True
            self.note(f"the log passed the bound on what is read ({len(self.live.buffer):,} bytes): "
                      f"later lines are not judged")

    def judge(self, run_over: bool = False) -> None:
        record = self.live.read()
        if record is None:
            return
        self._profile(record)
        for name, check in CHECKS.items():
            for item in check(record, self.ctx, run_over):
                if isinstance(item, Verdict):
                    self._verdict(name, item, record)
                else:
                    self.note(item)

    def _verdict(self, check: str, verdict: Verdict, record: RunRecord) -> None:
        self.verdicts.append(verdict)
        self.say(verdict_line(verdict))
        if not verdict.passed and self.failed_at is None:
            self.failed_at = evaluated(record)
            self.wait_for_evaluation = check in WAITS_FOR_EVALUATION

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.say(terminal(f"note: {text}"))

    def _profile(self, record: RunRecord) -> None:
        """``auto``: the first profile holding the pretrained-start floor of the log's dataset
        (where the bundled suites keep its bars), decided once the dataset is known."""
        if not self.ctx.auto_profile or not record.dataset:
            return
        from harness.options import PROFILES

        self.ctx.auto_profile = False
        book = self.ctx.book
        wanted = f"baseline/{record.dataset}/state0/pretrained_start"
        for name in PROFILES:
            book.profile = name
            if book.has(wanted):
                break
        else:
            book.profile = next(iter(PROFILES))
        self.say(f"profile {book.profile} (bars of {record.dataset})")

    @property
    def ended(self) -> bool:
        """Whether the log says the run ended (its last state completed)."""
        return self.record is not None and self.record.complete

    @property
    def failed(self) -> bool:
        return any(not v.passed for v in self.verdicts)

    def should_stop(self) -> bool:
        if self.failed_at is None or self.settings.keep_going:
            return False
        if self.settings.stop_now or not self.wait_for_evaluation:
            return True
        return self.record is not None and evaluated(self.record) > self.failed_at

    def finish(self, run_over: bool) -> None:
        """The last read: ``run_over`` when the run ended on its own (its last state ended)."""
        self.judge(run_over=run_over)


def evaluated(record: RunRecord) -> int:
    return sum(len(s.epochs) for s in record.states)


def progress(record: Optional[RunRecord]) -> dict:
    """Where the run got to and what its arguments planned: epochs and states."""
    if record is None:
        return {"epoch": None, "epochs": None, "state": None, "states": None}
    args = (record.spec or {}).get("args") or {}
    epochs = (record.spec or {}).get("recipe", {}).get("epochs")
    states = args.get("pruning_times")
    last = record.states[-1] if record.states else None
    return {"epoch": last.epochs[-1].epoch if last is not None and last.epochs else None,
            "epochs": epochs if isinstance(epochs, int) else None,
            "state": last.index if last is not None else None,
            "states": states if isinstance(states, int) and not isinstance(states, bool) else None}


def stopped_text(record: Optional[RunRecord]) -> str:
    """``stopped after epoch 0 of 60, state 0 of 16 (959 of 960 planned epochs not run)``."""
    p = progress(record)
    if p["epoch"] is None:
        where = "stopped before its first evaluation"
    else:
        where = f"stopped after epoch {p['epoch']}" + (f" of {p['epochs']}" if p["epochs"] else "")
    if p["state"] is not None:
        where += f", state {p['state']}" + (f" of {p['states']}" if p["states"] else "")
    if p["epochs"]:
        planned = p["epochs"] * (p["states"] or 1)
        done = evaluated(record) if record is not None else 0
        where += f" ({max(0, planned - done)} of {planned} planned epochs not run)"
    return where
