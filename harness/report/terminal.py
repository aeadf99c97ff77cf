"""The terminal summary: one line per verdict, failing first, the regressions, and the session's
status by the same rule as `harness gate` and report.md. Text from outside the harness (ids,
titles, notes, dates) is made safe for a terminal (:func:`harness.escape.terminal`)."""
from __future__ import annotations

from harness.escape import terminal
from harness.expect import Verdict
from harness.gate import session_status, verdict_of
from harness.report import cells


def summary_lines(verdicts: list[Verdict]) -> list[str]:
    if not verdicts:
        return ["no verdicts recorded"]
    ids = {v.id: terminal(v.id) for v in verdicts}
    width = max(len(i) for i in ids.values())
    lines = []
    for v in sorted(verdicts, key=lambda v: (v.passed, v.id)):
        mark = "PASS" if v.passed else "FAIL"
        error = (v.evidence or {}).get("error") if not v.passed else None
        if error:     # a run that could not be made: what failed, not "1 == 0"
            lines.append(f"{mark}  {ids[v.id]:<{width}}  {terminal(error)}")
            continue
        bar = terminal(cells.bar(v))
        lines.append(f"{mark}  {ids[v.id]:<{width}}  {terminal(cells.fmt(v.observed, v.unit)):>9}  "
                     f"{bar:>11}  {terminal(v.gap_text())}")
    return lines


def regression_summary(report: dict) -> list[str]:
    """One line per verdict whose same run passed in the previous session and fails now."""
    trends = (report.get("history") or {}).get("verdicts", {})
    lines = []
    for data in report.get("verdicts", []):
        trend = trends.get(data["id"], {})
        if cells.regression(trend):
            prev, v = trend["previous"], verdict_of(data)
            lines.append(terminal(f"REGRESSION  {v.id}: {cells.fmt(prev['observed'], v.unit)} in "
                                  f"session {prev['session']} ({prev['created']}) -> "
                                  f"{cells.fmt(v.observed, v.unit)} now"))
    return lines


def status_line(report: dict) -> str:
    """``harness: passed, 3/3 verdicts passed`` or ``harness: FAILED, ...: <reasons>``."""
    return terminal(f"harness: {session_status(report).headline()}")


def write_summary(terminalreporter, report: dict, paths: dict, profile: str, nothing: str = "") -> None:
    """The harness section of pytest's terminal summary (``terminalreporter``: pytest's);
    ``nothing``: the line saying why harness tests judged nothing (the session fails)."""
    if not report:
        return
    verdicts = [verdict_of(v) for v in report.get("verdicts", [])]
    if nothing:
        terminalreporter.write_line(terminal(nothing), red=True)
        return
    if not verdicts:  # a session of other tests: one neutral line, no section
        terminalreporter.write_line("harness: no verdict was recorded; report.md and `harness gate` "
                                    "count this session as FAILED")
        return
    terminalreporter.section(f"harness verdicts (profile {terminal(profile)})")
    for line in summary_lines(verdicts):
        terminalreporter.write_line(line, red=line.startswith("FAIL"), green=line.startswith("PASS"))
    for line in regression_summary(report):
        terminalreporter.write_line(line, red=True)
    status = session_status(report)
    terminalreporter.write_line(status_line(report), red=not status.passed, green=status.passed)
    if paths:
        terminalreporter.write_line(f"report: {terminal(paths['markdown'])}")
