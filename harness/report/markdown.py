"""report.md: the table a person reads, failing verdicts first."""
from __future__ import annotations

from harness.expect import Verdict


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}" if unit == "%" else f"{value:.4g}{(' ' + unit) if unit else ''}"


def _bar(v: Verdict) -> str:
    if v.op == "within":
        return f"within {v.tolerance:g} of {_fmt(v.threshold, v.unit)}"
    return f"{v.op} {_fmt(v.threshold, v.unit)}"


def _gap(v: Verdict) -> str:
    unit = " pp" if v.unit == "%" else (f" {v.unit}" if v.unit else "")
    return f"{v.gap:+.2f}{unit}"


def verdict_table(verdicts: list) -> list[str]:
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


def render_markdown(report: dict) -> str:
    verdicts = [Verdict.from_dict(v) for v in report["verdicts"]]
    counts = report["counts"]
    env = report.get("environment", {})
    status = "FAILED" if counts["failed"] else "passed"
    lines = [f"# harness report: {status}", "",
             f"Profile `{report['profile']}` · {counts['passed']}/{counts['verdicts']} verdicts passed · "
             f"{report['timings']['duration_s']:.1f} s · {report['created']}", ""]
    lines += verdict_table(verdicts) if verdicts else ["No verdicts were recorded."]
    if verdicts:
        lines += ["", "## Evidence", ""] + _evidence_lines(verdicts)
    lines += _run_lines(report.get("runs", []))
    if env:
        lines += ["", "## Environment", ""]
        lines += [f"- {k}: {_cell(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"
