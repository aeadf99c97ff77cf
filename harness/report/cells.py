"""The text of the report's cells (values, bars, gaps, trends), shared by report.md, report.html
and the terminal summary so the three say the same thing.

Each function takes ``esc``, the escaper of the caller's medium, and applies it to every fragment
that comes from outside the harness's own formatting (units, notes, dates, commits, inputs);
the numbers and operators it formats itself are left as they are. report.md passes
:func:`harness.escape.md_text`; report.html escapes the whole cell afterwards instead.
"""
from __future__ import annotations

import math
from typing import Optional

from harness import wording
from harness.expect import Verdict
from harness.report.history import ANOTHER_INPUT, BAR_MOVED, FIRST, SAME

Esc = wording.Esc
plain = wording.plain


def fmt(value: Optional[float], unit: str, esc: Esc = plain) -> str:
    """``74.12%`` for accuracies, ``0.5 s`` otherwise; ``-`` when there is no number."""
    return wording.number(value, unit, esc)


def gap_unit(unit: str, esc: Esc = plain) -> str:
    return wording.gap_unit(unit, esc)


def bar(v: Verdict, esc: Esc = plain) -> str:
    return v.bar_text(esc)


def gap(v: Verdict, esc: Esc = plain) -> str:
    """The signed gap (``-1.90 pp``); for a ``within`` bar, the distance from its target
    (``off by 0.02 pp``)."""
    if v.op == "within":
        return wording.off_by(v.observed, v.threshold, v.unit, esc)
    return wording.gap(v.gap, v.unit, esc)


def why(v: Verdict) -> Optional[str]:
    """A failing verdict's note (its cause: a recipe too short, a random init), unescaped."""
    note = v.evidence.get("note")
    return str(note) if note and not v.passed else None


def when(entry: dict, esc: Esc = plain) -> str:
    commit = str(entry.get("git_commit") or "unknown commit")[:12]
    return f"session {esc(str(entry.get('session')))}, {esc(str(entry.get('created')))}, {esc(commit)}"


def last_green(trend: dict, v: Verdict, esc: Esc = plain) -> str:
    if not trend:
        return "-"
    if v.passed:
        return "this session"
    green = trend.get("last_green")
    return "never" if not green else f"{fmt(green.get('observed'), v.unit, esc)} ({when(green, esc)})"


def relation_of(trend: dict) -> str:
    """The trend's relation; reports written before relations were recorded compared runs only."""
    if not trend.get("previous"):
        return FIRST
    return trend.get("relation") or SAME


def change(trend: dict, v: Verdict, esc: Esc = plain) -> str:
    """The "change since previous" cell: a delta only between runs of the same input."""
    if not trend:
        return "-"
    kind, prev = relation_of(trend), trend.get("previous") or {}
    if kind == FIRST:
        return "first session"
    was = f"was {fmt(prev.get('observed'), v.unit, esc)}, {'passed' if prev.get('passed') else 'failed'}"
    if kind == ANOTHER_INPUT:
        judged = esc(str(prev["input"])) if prev.get("input") else "an input not recorded"
        return f"another input ({was} on {judged}; {when(prev, esc)})"
    delta = wording.finite(trend.get("change"))
    delta_text = "" if delta is None else f"{delta:+.2f}{gap_unit(v.unit, esc)} "
    if kind == BAR_MOVED:
        old = Verdict(v.id, v.title, math.nan, str(prev.get("op")), wording.finite(prev.get("threshold")),
                      v.unit, math.nan, False, wording.finite(prev.get("tolerance")) or 0.0)
        return f"bar moved from {bar(old, esc)} to {bar(v, esc)}: {delta_text}({was}; {when(prev, esc)})"
    return f"{delta_text}({was}; {when(prev, esc)})"


def regression(trend: dict) -> bool:
    """A regression: the same run passed in the previous session and fails now."""
    return bool(trend.get("regression")) and relation_of(trend) == SAME
