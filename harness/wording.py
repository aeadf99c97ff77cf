"""How the harness writes a value, a bar and a gap: one place for every medium (the verdict line,
report.md, report.html, the terminal summary, the gate).

``%`` values are accuracies in percent and their gaps are percentage points (``pp``); any other
unit is written after the number. A missing number is ``-``;
``nan`` and ``inf`` are written as they are (an impossible value must show). ``esc`` is the
escaper of the caller's medium, applied to what comes from outside (the unit a suite declared);
the numbers and operators written here are safe as they are.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Optional

Esc = Callable[[str], str]
OPS = (">=", "<=", "==", "within")


def plain(text: str) -> str:
    return text


def finite(value) -> Optional[float]:
    """``value`` as a float when it is a finite number, else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def number(value, unit: str, esc: Esc = plain) -> str:
    """``74.12%`` for accuracies, ``0.5 s`` otherwise; ``nan`` / ``inf`` as they are; ``-``
    when there is no number at all."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    value = finite(value)
    if value is None:
        return "-"
    return f"{value:.2f}%" if unit == "%" else f"{value:.4g}{(' ' + esc(unit)) if unit else ''}"


def gap_unit(unit: str, esc: Esc = plain) -> str:
    """The unit of a difference: ``pp`` for accuracies, else the unit itself."""
    return " pp" if unit == "%" else (f" {esc(unit)}" if unit else "")


def gap(value, unit: str, esc: Esc = plain) -> str:
    """``-20.88 pp`` (signed: negative is short of the bar), ``-`` when there is no finite gap."""
    value = finite(value)
    return "-" if value is None else f"{value:+.2f}{gap_unit(unit, esc)}"


def amount(value, unit: str, esc: Esc = plain) -> str:
    """A size of a difference, unsigned: ``0.10 pp``, ``2.21 pp``, ``0.004 pp`` (two decimals for
    accuracies, two significant digits below 0.01), ``3 weights``; ``-`` without a finite number."""
    value = finite(value)
    if value is None:
        return "-"
    if unit == "%":
        text = f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"
    else:
        text = f"{value:.4g}"
    return text + gap_unit(unit, esc)


def off_by(observed, threshold, unit: str, esc: Esc = plain) -> str:
    """How far a ``within`` verdict's observation lies from its target: ``off by 0.02 pp``."""
    o, t = finite(observed), finite(threshold)
    return "off by -" if o is None or t is None else f"off by {amount(abs(o - t), unit, esc)}"


def bar(op: str, threshold, unit: str, tolerance: float = 0.0, tolerance_se=None,
        esc: Esc = plain) -> str:
    """``>= 95.00%``, ``within 0.10 pp of 70.00%``, ``>= 95.00% (tolerance 2 SE)``."""
    if op == "within":
        return f"within {amount(tolerance, unit, esc)} of {number(threshold, unit, esc)}"
    k = finite(tolerance_se)
    extra = f" (tolerance {k:g} SE)" if k else ""
    return f"{op if op in OPS else esc(op)} {number(threshold, unit, esc)}{extra}"


def span(low, high, unit: str) -> str:
    """``[93.10%, 96.40%]``."""
    return f"[{number(low, unit)}, {number(high, unit)}]"


def first_words(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters at the last word boundary before it, marked with
    ``...`` when cut (a word over the last quarter of the limit is cut where the limit falls)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = text[:limit - 3]
    boundary = max(head.rfind(c) for c in " ,;/")
    return (head[:boundary + 1].rstrip(" ,;") if boundary >= limit * 3 // 4 else head) + "..."


_PATH = re.compile(r"(?<![\w.:/~])(?:~|\.{1,2})?/(?:[\w.~-]{1,200}/){0,64}([\w.-]{1,200})")   # /a/b, ./a, ~/a


def brief(text: str, limit: int = 100) -> str:
    """``text`` in at most ``limit`` characters for one summary line: each path as its file
    name (the full text names it), cut between words."""
    return first_words(_PATH.sub(r"\1", str(text)), limit)
