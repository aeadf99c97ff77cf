"""The CI gate: from a session's report, whether it passed and why not.

One rule, used by `harness gate`, report.md, report.html and the terminal summary alike: a session
fails when a verdict failed, when it judged nothing (no verdicts), or when pytest ended with an
error outside the verdicts (a crash, a missing data root), each with its own reason, because a
gate that passes when nothing was judged proves nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.expect import Verdict


@dataclass(frozen=True)
class Status:
    """A session's outcome: ``problems`` holds one line per reason to fail (empty: passed)."""

    problems: tuple
    verdicts: int
    passed_verdicts: int

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def word(self) -> str:
        return "passed" if self.passed else "FAILED"

    def headline(self) -> str:
        """``passed, 3/3 verdicts passed`` or ``FAILED, 0/0 verdicts passed: no verdict ...``."""
        counts = f"{self.passed_verdicts}/{self.verdicts} verdicts passed"
        if self.passed:
            return f"passed, {counts}"
        reasons = [p for p in self.problems if not p.startswith(("FAIL ", "REGRESSION "))]
        failed = self.verdicts - self.passed_verdicts
        if failed:
            reasons.insert(0, f"{failed} verdict{'s' if failed != 1 else ''} failed")
        return f"FAILED, {counts}: {'; '.join(reasons)}"


def verdict_of(data: dict) -> Verdict:
    """A Verdict from report.json's dict; JSON null for observed, threshold or gap reads as nan."""
    fields = {k: data[k] for k in Verdict.__dataclass_fields__ if k in data}
    for key in ("observed", "threshold", "gap"):
        if fields.get(key) is None:
            fields[key] = math.nan
    return Verdict(**fields)


def session_status(report: dict) -> Status:
    """The one rule (see the module doc) applied to ``report`` (report.json's dict)."""
    data = report.get("verdicts", [])
    verdicts = [verdict_of(v) for v in data]
    regressions = {v["id"] for v in data if v.get("regression") is True}
    failed = [v for v in verdicts if v.passed is not True]
    problems = [("REGRESSION " if v.id in regressions else "FAIL ") + v.line() for v in failed]
    status = report.get("exit_status")
    if not verdicts:
        problems.append(f"no verdict was recorded: the session judged nothing "
                        f"(pytest exit status {status})")
    elif not failed and status not in (0, None):
        problems.append(f"every verdict passed but pytest exited with status {status} "
                        f"(an error outside the verdicts; see the log)")
    return Status(tuple(problems), len(verdicts), len(verdicts) - len(failed))


def gate_problems(report: dict) -> list[str]:
    """One line per reason to fail the job; empty when the job passes."""
    return list(session_status(report).problems)
