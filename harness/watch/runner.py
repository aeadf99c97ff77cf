"""``harness watch``: a log followed, or a command run and its output (or log) followed, judged
as it trains; the summary, the exit status and, for a command, the session's reports.

The exit status is the gate's (:func:`harness.gate.session_status`): 1 when a verdict failed, when
nothing was judged, or when the command failed on its own with every verdict passing; 0 when
every verdict passed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from harness.escape import terminal
from harness.watch.follower import Follower
from harness.watch.watcher import Watch, stopped_text


@dataclass
class Outcome:
    """How a watch ended: ``how`` is ``ended`` (the log said the run ended), ``exited`` (the
    command ended on its own), ``stopped`` (stopped for a failing verdict), ``idle``
    (``--idle`` seconds without a line) or ``interrupted`` (Ctrl-C)."""

    how: str
    exit_status: Optional[int] = None       # the command's (None: a log was followed)
    started: float = field(default_factory=time.time)
    lines: list = field(default_factory=list)

    @property
    def run_over(self) -> bool:
        return self.how == "ended" or (self.how == "exited" and self.exit_status == 0)


def follow_log(watch: Watch, path: Path, *, idle_s: Optional[float], wait: bool,
               poll_s: float = 0.2) -> Outcome:
    """Judge ``path`` as it grows until the log says the run ended, ``idle_s`` seconds pass
    without a line, or Ctrl-C."""
    outcome = Outcome("idle")
    follower = Follower(path, idle_s=idle_s, poll_s=poll_s, wait_for_file=wait, note=watch.note)
    try:
        for line in follower:
            watch.feed(line)
            if watch.ended:
                watch.judge(run_over=True)
                outcome.how = "ended"
                break
    except KeyboardInterrupt:
        outcome.how = "interrupted"
    finally:
        follower.close()
    if outcome.how != "ended":
        watch.finish(run_over=False)
    return outcome


def summary_lines(watch: Watch, outcome: Outcome) -> list[str]:
    """The end of a watch: what ended it, where the run got to, and the verdicts' tally."""
    failed = [v for v in watch.verdicts if not v.passed]
    record = watch.record
    how = {"ended": "the log says the run ended",
           "exited": f"the command exited with status {outcome.exit_status}",
           "stopped": f"the run was stopped for a failing verdict: {stopped_text(record)}",
           "idle": "no new line within --idle seconds; the run may still be going",
           "interrupted": "interrupted (Ctrl-C)"}[outcome.how]
    lines = [f"watch: {how}"]
    if record is not None and outcome.how != "stopped" and not outcome.run_over:
        lines.append(f"watch: got to: {stopped_text(record).removeprefix('stopped ')}")
    if watch.live.full:
        lines.append("watch: the log passed the bound on what is read; later lines were not judged")
    word = "FAILED" if failed or not watch.verdicts else "passed"
    tally = f"{len(watch.verdicts) - len(failed)}/{len(watch.verdicts)} verdicts passed"
    if not watch.verdicts:
        tally += ": no verdict was decided (nothing in the log to judge yet)"
    lines.append(f"watch: {word} ({tally}, profile {watch.ctx.book.profile})")
    return [terminal(line) for line in lines]


def exit_status(report: dict) -> int:
    from harness.gate import session_status

    return 0 if session_status(report).passed else 1


def report_of(watch: Watch, outcome: Outcome, options: dict) -> dict:
    """The session's report.json dict: the watch's verdicts, its run and how it ended."""
    from harness.environment import environment
    from harness.report import build_report

    records = {"watch": watch.record} if watch.record is not None else {}
    verdicts = list(watch.verdicts)
    if outcome.how == "stopped":       # the verdict that stopped the run says what was not run
        at = next(i for i, v in enumerate(verdicts) if not v.passed)
        verdicts[at] = replace(verdicts[at], evidence=dict(
            verdicts[at].evidence, run_stopped=f"this verdict stopped the run: "
                                               f"{stopped_text(watch.record)}"))
    status = outcome.exit_status if outcome.exit_status is not None else 0
    if outcome.how == "stopped":
        status = 1
    options = dict(options, ended=outcome.how, stopped=stopped_text(watch.record)
                   if outcome.how == "stopped" else None, notes=list(watch.notes))
    return build_report(profile=watch.ctx.book.profile, verdicts=verdicts,
                        tests=[{"nodeid": f"watch {options.get('watched', '')}",
                                "outcome": "failed" if watch.failed or not watch.verdicts else "passed",
                                "duration_s": round(time.time() - outcome.started, 3)}],
                        records=records, environment=environment(None, Path.cwd()),
                        started=outcome.started, finished=time.time(), options=options,
                        exit_status=status)


def publish(report: dict, reports_dir: Path, say: Callable[[str], None]) -> None:
    from harness.report import publish_session

    paths = publish_session(report, reports_dir)
    say(terminal(f"watch: report {paths['markdown']} (and report.json, report.html beside it)"))
