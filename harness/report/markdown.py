"""report.md: the table a person reads, failing verdicts first (also the GitHub job summary).

Every string that comes from outside the harness's own code (verdict ids and titles, notes,
evidence, run ids, paths, log lines, environment values) goes through :func:`md_text` or
:func:`md_code`, so a backtick, a ``|``, a carriage return or HTML in a log cannot break a table
cell or a code span, nor inject markdown or HTML into the report or the job summary.
"""
from __future__ import annotations

from harness.escape import md_code, md_text
from harness.wording import first_words
from harness.gate import session_status, verdict_of
from harness.report import cells
from harness.report.pruning import pruning_lines


def _verdict_cells(v, trends: dict) -> str:
    why = cells.why(v)
    gap = cells.gap(v, md_text) + (f"<br>{md_text(why)}" if why else "")
    return (f"| {md_code(v.id)} | {cells.fmt(v.observed, v.unit, md_text)} | {cells.bar(v, md_text)} | "
            f"{gap} | {_result(v, trends)} |")


def _result(v, trends: dict) -> str:
    if v.passed:
        return "pass"
    return "**FAIL (regression)**" if cells.regression(trends.get(v.id, {})) else "**FAIL**"


def verdict_table(verdicts: list, history: dict | None = None) -> list[str]:
    if history is not None:
        return history_table(verdicts, history)
    lines = ["| verdict | observed | bar | gap | result |", "|---|---|---|---|---|"]
    lines += [_verdict_cells(v, {}) for v in sorted(verdicts, key=lambda v: (v.passed, v.id))]
    return lines


def history_table(verdicts: list, history: dict) -> list[str]:
    """The verdict table with the history columns "last green" and "change since previous";
    a verdict of the same run that passed in the previous session and fails now reads
    FAIL (regression); a moved bar or another input says so instead."""
    trends = history.get("verdicts", {})
    lines = ["| verdict | observed | bar | gap | result | last green | change since previous |",
             "|---|---|---|---|---|---|---|"]
    order = sorted(verdicts, key=lambda v: (v.passed, not cells.regression(trends.get(v.id, {})), v.id))
    for v in order:
        trend = trends.get(v.id, {})
        lines.append(f"{_verdict_cells(v, trends)} {cells.last_green(trend, v, md_text)} | "
                     f"{cells.change(trend, v, md_text)} |")
    return lines


def regression_lines(report: dict) -> list[str]:
    """One line per regression: what the same run was in the previous session and what it is now."""
    trends = (report.get("history") or {}).get("verdicts", {})
    lines = []
    for data in report["verdicts"]:
        trend = trends.get(data["id"], {})
        if not cells.regression(trend):
            continue
        v, prev = verdict_of(data), trend["previous"]
        lines.append(f"- {md_code(v.id)} fell from {cells.fmt(prev['observed'], v.unit, md_text)} "
                     f"(passed, {cells.when(prev, md_text)}) to {cells.fmt(v.observed, v.unit, md_text)}: "
                     f"{md_text(v.line())}")
    if not lines:
        return []
    return ["", "## Regressions", "", "The same run (input, device and bar) passed in the previous "
            "session and fails now:", ""] + lines


def _evidence_lines(verdicts: list) -> list[str]:
    lines = []
    for v in sorted(verdicts, key=lambda v: (v.passed, v.id)):
        shown = {k: val for k, val in v.evidence.items() if k != "note" and val is not None}
        lines.append(f"- {md_code(v.id)}: {md_text(v.line())}")
        if shown:
            parts = ", ".join(f"{k}={_short(val)}" for k, val in shown.items())
            lines.append(f"  - evidence: {md_text(parts)}")
    return lines


def _short(value: object, limit: int = 160) -> str:
    return first_words(str(value), limit)


def _run_lines(runs: list) -> list[str]:
    if not runs:
        return []
    lines = ["", "## Runs", "", "| case | run id | state | best | final | epochs | s | img/s | "
             "GPU mem MB | reused |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for s in run["states"]:
            lines.append(
                f"| {md_text(run['case'])} | {md_code(run['run_id'])} | {s['state']} | "
                f"{cells.fmt(s['best_accuracy'], '%')} | {cells.fmt(s['final_accuracy'], '%')} | "
                f"{s['epochs']} | {_num(s['seconds'], 1)} | {_num(s['images_per_s'], 0)} | "
                f"{_num(s['peak_memory_mb'], 0)} | {'yes' if run['reused'] else 'no'} |")
    return lines + _log_lines(runs)


def _log_lines(runs: list) -> list[str]:
    """How each run parsed from a training log was read: lines understood, what was set aside."""
    lines = []
    for run in runs:
        log = run.get("log")
        if not log:
            continue
        unfinished = log.get("unfinished_last_line")
        lines.append(
            f"- {md_text(run['case'])}: {md_text(run['source'])} {md_code(log.get('log_path'))}: "
            f"{md_text(log.get('lines_total'))} lines, {md_text(log.get('lines_not_understood'))} not "
            f"understood, {md_text(log.get('undecodable_lines'))} with undecodable bytes; run "
            f"complete: {'yes' if run.get('complete') else 'no'}"
            + (f"; unfinished last line set aside: {md_code(unfinished)}" if unfinished else "")
            + (f"; accuracy scale: {md_text(log['accuracy_scale'])}" if log.get("accuracy_scale") else ""))
        lines += [f"  - {md_text(phase)}" for phase in log.get("phases") or []]
        for example in log.get("not_understood_examples") or []:
            lines.append(f"  - not understood: {md_code(example)}")
    return ["", "Training logs:", ""] + lines if lines else []


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _regression_count(counts: dict) -> str:
    n = counts.get("regressions")
    return f" · **{n} regression{'s' if n != 1 else ''}**" if n else ""


def _status_lines(report: dict) -> list[str]:
    status = session_status(report)
    counts = report["counts"]
    lines = [f"# harness report: {status.word}", "",
             f"Profile {md_code(report['profile'])} · {status.passed_verdicts}/{status.verdicts} "
             f"verdicts passed · {report['timings']['duration_s']:.1f} s · "
             f"{md_text(report['created'])}{_regression_count(counts)}", ""]
    if not status.passed:
        lines += [f"**FAILED**: {md_text(status.headline().partition(': ')[2])}", ""]
    return lines


def _skipped_lines(history: dict) -> list[str]:
    """The history store's rows not read into the trends (harness.report.guard), named."""
    skipped = history.get("skipped") or []
    if not skipped:
        return []
    return (["", f"The history store's rows not read into the trends ({md_text(history.get('store', ''))}):",
             ""] + [f"- {md_text(line)}" for line in skipped])


def render_markdown(report: dict) -> str:
    verdicts = [verdict_of(v) for v in report["verdicts"]]
    env = report.get("environment", {})
    lines = _status_lines(report)
    lines += verdict_table(verdicts, report.get("history")) if verdicts else ["No verdicts were recorded."]
    lines += regression_lines(report)
    lines += _skipped_lines(report.get("history") or {})
    if verdicts:
        lines += ["", "## Evidence", ""] + _evidence_lines(verdicts)
    lines += _run_lines(report.get("runs", []))
    lines += pruning_lines(report)
    if env:
        lines += ["", "## Environment", ""]
        lines += [f"- {md_text(k)}: {md_text(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"
