"""The CI gate: from a session's report.json, whether a nightly job passes and why not.

The job fails when a verdict fails; a session that judged nothing (no verdicts) or ended in a
pytest error without a failing verdict (a crash, a missing data root) fails too, with its own
reason, because a gate that passes when nothing was judged proves nothing.
"""
from __future__ import annotations

from harness.expect import Verdict


def gate_problems(report: dict) -> list[str]:
    """One line per reason to fail the job; empty when the job passes."""
    verdicts = [Verdict.from_dict(v) for v in report.get("verdicts", [])]
    failed = [v for v in verdicts if not v.passed]
    regressions = {v["id"] for v in report.get("verdicts", []) if v.get("regression")}
    problems = [("REGRESSION " if v.id in regressions else "FAIL ") + v.line() for v in failed]
    if not verdicts:
        problems.append("no verdict was recorded: the session judged nothing "
                        f"(pytest exit status {report.get('exit_status')})")
    elif not failed and report.get("exit_status") not in (0, None):
        problems.append(f"every verdict passed but pytest exited with status "
                        f"{report.get('exit_status')} (an error outside the verdicts; see the log)")
    return problems
