"""report.md: the table a person reads, failing verdicts first."""
from __future__ import annotations

from harness.expect import Verdict
from harness.report.pruning import pruning_lines


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}" if unit == "%" else f"{value:.4g}{(' ' + unit) if unit else ''}"


def _bar(v: Verdict) -> str:
    if v.op == "within":
        return f"within {v.tolerance:g} of {_fmt(v.threshold, v.unit)}"
    tolerance = v.evidence.get("tolerance_se")
    extra = f" (tolerance {tolerance['k']:g} SE)" if isinstance(tolerance, dict) else ""
    return f"{v.op} {_fmt(v.threshold, v.unit)}{extra}"


def _gap(v: Verdict) -> str:
    unit = " pp" if v.unit == "%" else (f" {v.unit}" if v.unit else "")
    return f"{v.gap:+.2f}{unit}"


def verdict_table(verdicts: list, history: dict | None = None) -> list[str]:
    if history is not None:
        return history_table(verdicts, history)
    lines = ["| verdict | observed | bar | gap | result |", "|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (v.passed, v.id)):
        result = "pass" if v.passed else "**FAIL**"
        lines.append(f"| `{_cell(v.id)}` | {_fmt(v.observed, v.unit)} | {_cell(_bar(v))} | "
                     f"{_gap(v)}{_why(v)} | {result} |")
    return lines


def _why(v: Verdict) -> str:
    """A failing verdict's note (its cause, e.g. a recipe too short) beside its gap."""
    note = v.evidence.get("note")
    return f"<br>{_cell(note)}" if note and not v.passed else ""

def history_table(verdicts: list, history: dict) -> list[str]:
    """The verdict table with the history columns "last green" and "change since previous";
    a verdict that passed in the previous session and fails now reads FAIL (regression)."""
    trends = history.get("verdicts", {})
    lines = ["| verdict | observed | bar | gap | result | last green | change since previous |",
             "|---|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (v.passed, not _regression(trends, v), v.id)):
        trend = trends.get(v.id, {})
        result = "pass" if v.passed else ("**FAIL (regression)**" if _regression(trends, v) else "**FAIL**")
        lines.append(f"| `{_cell(v.id)}` | {_fmt(v.observed, v.unit)} | {_cell(_bar(v))} | "
                     f"{_gap(v)}{_why(v)} | {result} | {_cell(_last_green(trend, v))} | "
                     f"{_cell(_change(trend, v))} |")
    return lines


def _regression(trends: dict, v: Verdict) -> bool:
    return bool(trends.get(v.id, {}).get("regression"))


def _when(entry: dict) -> str:
    commit = (entry.get("git_commit") or "unknown commit")[:12]
    return f"session {entry['session']}, {entry['created']}, {commit}"


def _last_green(trend: dict, v: Verdict) -> str:
    green = trend.get("last_green")
    if v.passed:
        return "this session"
    if not green:
        return "never"
    return f"{_fmt(green['observed'], v.unit)} ({_when(green)})"


def _change(trend: dict, v: Verdict) -> str:
    previous = trend.get("previous")
    if not previous:
        return "first session"
    if trend.get("change") is None:
        return f"was {_fmt(previous['observed'], v.unit)} ({_when(previous)})"
    unit = " pp" if v.unit == "%" else (f" {v.unit}" if v.unit else "")
    was = "passed" if previous["passed"] else "failed"
    return (f"{trend['change']:+.2f}{unit} (was {_fmt(previous['observed'], v.unit)}, {was}; "
            f"{_when(previous)})")


def regression_lines(report: dict) -> list[str]:
    """One line per regression: what it was in the previous session and what it is now."""
    history = report.get("history") or {}
    trends = history.get("verdicts", {})
    lines = []
    for data in report["verdicts"]:
        trend = trends.get(data["id"], {})
        if not trend.get("regression"):
            continue
        v = Verdict.from_dict(data)
        prev = trend["previous"]
        lines.append(f"- `{_cell(v.id)}` fell from {_fmt(prev['observed'], v.unit)} (passed, "
                     f"{_when(prev)}) to {_fmt(v.observed, v.unit)}: {_cell(v.line())}")
    return ["", "## Regressions", "", "Passed in the previous session, fail now:", ""] + lines if lines else []


def _evidence_lines(verdicts: list) -> list[str]:
    lines = []
    for v in sorted(verdicts, key=lambda v: (v.passed, v.id)):
        shown = {k: val for k, val in v.evidence.items() if k not in ("note",)}
        lines.append(f"- `{_cell(v.id)}`: {_cell(v.line())}")
        if shown:
            parts = ", ".join(f"{k}={_short(val)}" for k, val in shown.items())
            lines.append(f"  - evidence: {_cell(parts)}")
    return lines


def _short(value: object, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _run_lines(runs: list) -> list[str]:
    if not runs:
        return []
    lines = ["", "## Runs", "", "| case | run id | state | best | final | epochs | s | img/s | "
             "GPU mem MB | reused |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for s in run["states"]:
            lines.append(
                f"| {_cell(run['case'])} | `{run['run_id']}` | {s['state']} | "
                f"{_fmt(s['best_accuracy'], '%')} | {_fmt(s['final_accuracy'], '%')} | {s['epochs']} | "
                f"{_num(s['seconds'], 1)} | {_num(s['images_per_s'], 0)} | "
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
            f"- {_cell(run['case'])}: {run['source']} `{_cell(log.get('log_path'))}`: "
            f"{log.get('lines_total')} lines, {log.get('lines_not_understood')} not understood, "
            f"{log.get('undecodable_lines')} with undecodable bytes; run complete: "
            f"{'yes' if run.get('complete') else 'no'}"
            + (f"; unfinished last line set aside: `{_cell(unfinished)}`" if unfinished else ""))
        for example in log.get("not_understood_examples") or []:
            lines.append(f"  - not understood: `{_cell(example)}`")
    return ["", "Training logs:", ""] + lines if lines else []


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _regression_count(counts: dict) -> str:
    n = counts.get("regressions")
    return f" · **{n} regression{'s' if n != 1 else ''}**" if n else ""


def render_markdown(report: dict) -> str:
    verdicts = [Verdict.from_dict(v) for v in report["verdicts"]]
    counts = report["counts"]
    env = report.get("environment", {})
    status = "FAILED" if counts["failed"] else "passed"
    lines = [f"# harness report: {status}", "",
             f"Profile `{report['profile']}` · {counts['passed']}/{counts['verdicts']} verdicts passed · "
             f"{report['timings']['duration_s']:.1f} s · {report['created']}{_regression_count(counts)}", ""]
    lines += verdict_table(verdicts, report.get("history")) if verdicts else ["No verdicts were recorded."]
    lines += regression_lines(report)
    if verdicts:
        lines += ["", "## Evidence", ""] + _evidence_lines(verdicts)
    lines += _run_lines(report.get("runs", []))
    lines += pruning_lines(report)
    if env:
        lines += ["", "## Environment", ""]
        lines += [f"- {k}: {_cell(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"
