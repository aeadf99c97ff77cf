"""The terminal summary: one line per verdict, failing first."""
from __future__ import annotations

from harness.expect import Verdict


def summary_lines(verdicts: list[Verdict]) -> list[str]:
    if not verdicts:
        return ["no verdicts recorded"]
    width = max(len(v.id) for v in verdicts)
    lines = []
    for v in sorted(verdicts, key=lambda v: (v.passed, v.id)):
        mark = "PASS" if v.passed else "FAIL"
        unit = " pp" if v.unit == "%" else ""
        observed = f"{v.observed:.2f}{v.unit}" if v.unit == "%" else f"{v.observed:.4g}"
        bar = f"{v.op} {v.threshold:.2f}{v.unit}" if v.unit == "%" else f"{v.op} {v.threshold:.4g}"
        if v.op == "within":
            bar = f"{v.threshold:.2f}{v.unit} ±{v.tolerance:g}"
        lines.append(f"{mark}  {v.id:<{width}}  {observed:>9}  {bar:>11}  gap {v.gap:+.2f}{unit}")
    return lines


def regression_summary(report: dict) -> list[str]:
    """One line per verdict that passed in the previous session and fails now."""
    trends = (report.get("history") or {}).get("verdicts", {})
    lines = []
    for data in report.get("verdicts", []):
        trend = trends.get(data["id"], {})
        if trend.get("regression"):
            prev, unit = trend["previous"], data["unit"]
            was = f"{prev['observed']:.2f}{unit}" if prev["observed"] is not None else "nan"
            lines.append(f"REGRESSION  {data['id']}: {was} in session {prev['session']} "
                         f"({prev['created']}) -> {data['observed']:.2f}{unit} now")
    return lines
