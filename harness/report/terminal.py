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
        lines.append(f"{mark}  {v.id:<{width}}  {observed:>9}  {bar:>11}  gap {v.gap:+.2f}{unit}")
    return lines
