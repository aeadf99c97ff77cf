"""Expectations and verdicts: a bar, an observed value, and the signed gap between them.

An :class:`Expectation` is data (id, title, op, threshold, unit). Evaluating it on an observed
value gives a :class:`Verdict` carrying every field report.json stores: id, observed, op, threshold,
unit, gap (observed minus threshold, negative when short of the bar), passed and evidence.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Optional, Sequence

from harness import wording

OPS = wording.OPS
_EQ_TOL = 1e-9


class ExpectationError(ValueError):
    """A malformed expectation or override; the message names the field and the value."""


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion, in percent, clipped to [0, 100]."""
    if n <= 0:
        raise ExpectationError(f"wilson_interval: n must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ExpectationError(f"wilson_interval: successes must be in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half)))


@dataclass(frozen=True)
class Expectation:
    """A bar: ``observed <op> threshold`` (``within`` means ``|observed - threshold| <= tolerance``)."""

    id: str
    title: str
    op: str
    threshold: float
    unit: str = ""
    tolerance: float = 0.0
    tolerance_se: float = 0.0   # >0: an accuracy fails only when its k-SE interval misses the bar
    seeds: int = 1              # >1: runs with seeds seed..seed+seeds-1, judged on their mean

    def __post_init__(self) -> None:
        _check_statistics(self)
        if self.op not in OPS:
            raise ExpectationError(f"Expectation {self.id!r}: op must be one of {OPS}, got {self.op!r}")
        if (not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool)
                or not math.isfinite(self.threshold)):
            raise ExpectationError(
                f"Expectation {self.id!r}: threshold must be a finite number, got {self.threshold!r}")
        if not isinstance(self.tolerance, (int, float)) or not math.isfinite(self.tolerance):
            raise ExpectationError(
                f"Expectation {self.id!r}: tolerance must be a finite number, got {self.tolerance!r}")
        if self.op == "within" and self.tolerance <= 0:
            raise ExpectationError(
                f"Expectation {self.id!r}: op 'within' needs tolerance > 0, got {self.tolerance!r}")

    def evaluate(self, observed: float, evidence: Mapping[str, Any] | None = None) -> "Verdict":
        """The verdict on ``observed``; a value that is not a finite number (nan, inf) fails,
        with no gap and a note saying so, whatever the bar."""
        observed = float(observed)
        evidence = dict(evidence or {})
        if math.isfinite(observed):
            gap = _gap(self.op, observed, self.threshold, self.tolerance)
            passed = _holds(self.op, observed, self.threshold, self.tolerance)
        else:
            gap, passed = math.nan, False
            evidence["note"] = _join(evidence.get("note"),
                                     f"observed value {observed!r} is not a finite number")
        return Verdict(id=self.id, title=self.title, observed=observed, op=self.op,
                       threshold=float(self.threshold), unit=self.unit, gap=gap, passed=passed,
                       tolerance=self.tolerance, evidence=evidence)

    def evaluate_accuracy(self, correct: int, n: int, evidence: Mapping[str, Any] | None = None
                          ) -> "Verdict":
        """An accuracy verdict in percent with its sample count and 95% Wilson interval."""
        low, high = wilson_interval(correct, n)
        merged = {"n": n, "correct": correct, "wilson95": [round(low, 4), round(high, 4)]}
        merged.update(evidence or {})
        verdict = self.evaluate(100.0 * correct / n, merged)
        if self.tolerance_se:
            interval = wilson_interval(correct, n, z=self.tolerance_se)
            verdict = _within_se(verdict, self.tolerance_se, interval, "Wilson interval")
        return verdict

    def evaluate_seeds(self, values: Sequence[float], evidence: Mapping[str, Any] | None = None
                       ) -> "Verdict":
        """A multi-seed verdict: the mean of one observation per seed, with its spread (sample
        std, min and max) in the evidence and the line. With ``tolerance_se`` the bar is judged
        on the interval mean +- k standard errors of the mean over seeds."""
        values = [float(v) for v in values]
        if len(values) != self.seeds:
            raise ExpectationError(f"Expectation {self.id!r}: seeds={self.seeds} needs one observation "
                                   f"per seed, got {len(values)}")
        mean = sum(values) / len(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        merged = {"seeds": len(values), "per_seed": [round(v, 4) for v in values],
                  "mean": round(mean, 4), "std": round(std, 4),
                  "spread": [round(min(values), 4), round(max(values), 4)]}
        merged.update(evidence or {})
        merged["note"] = _join(merged.get("note"), (
            f"mean of {len(values)} seeds, std {std:.2f}{wording.gap_unit(self.unit)}, range "
            f"{wording.number(min(values), self.unit)} to {wording.number(max(values), self.unit)}"))
        verdict = self.evaluate(mean, merged)
        if self.tolerance_se and len(values) > 1:
            half = self.tolerance_se * std / math.sqrt(len(values))
            verdict = _within_se(verdict, self.tolerance_se, (mean - half, mean + half),
                                 "interval of the mean over seeds")
        return verdict

    def evaluate_accuracy_seeds(self, results: Sequence[tuple], evidence: Mapping[str, Any] | None = None
                                ) -> "Verdict":
        """``results`` holds one ``(correct, n)`` per seed; judged as :meth:`evaluate_seeds` on
        the per-seed accuracies in percent, with the pooled 95% Wilson interval as evidence."""
        correct, n = sum(c for c, _ in results), sum(m for _, m in results)
        low, high = wilson_interval(correct, n) if n else (float("nan"), float("nan"))
        merged = {"per_seed_correct_n": [[c, m] for c, m in results],
                  "pooled_wilson95": [round(low, 4), round(high, 4)]}
        merged.update(evidence or {})
        return self.evaluate_seeds([100.0 * c / m for c, m in results], merged)

    def with_threshold(self, op: str, threshold: float) -> "Expectation":
        return replace(self, op=op, threshold=threshold)


def _check_statistics(e: Expectation) -> None:
    k = e.tolerance_se
    if not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
        raise ExpectationError(f"Expectation {e.id!r}: tolerance_se must be a number >= 0 "
                               f"(standard errors), got {k!r}")
    if k and e.op not in (">=", "<="):
        raise ExpectationError(f"Expectation {e.id!r}: tolerance_se needs op '>=' or '<=', got {e.op!r}")
    if not isinstance(e.seeds, int) or isinstance(e.seeds, bool) or e.seeds < 1:
        raise ExpectationError(f"Expectation {e.id!r}: seeds must be an int >= 1, got {e.seeds!r}")


def _within_se(verdict: "Verdict", k: float, interval: tuple, what: str) -> "Verdict":
    """Judge ``verdict`` with a tolerance of ``k`` standard errors: a ``>=`` bar fails only when
    the interval's upper end is below it (a ``<=`` bar: the lower end above it); say which."""
    low, high = interval
    end, name = (high, "upper") if verdict.op == ">=" else (low, "lower")
    reaches = end >= verdict.threshold if verdict.op == ">=" else end <= verdict.threshold
    bar = wording.number(verdict.threshold, verdict.unit)
    span = f"{k:g}-SE {what} {wording.span(low, high, verdict.unit)}"
    if verdict.passed:
        note = None
    elif reaches:
        note = f"short of the bar but within {k:g} SE: the {name} end of the {span} reaches {bar}"
    else:
        side = "below" if verdict.op == ">=" else "above"
        note = f"fails beyond {k:g} SE: the {name} end of the {span} is {side} {bar}"
    evidence = dict(verdict.evidence)
    evidence["tolerance_se"] = {"k": k, "interval": [round(low, 4), round(high, 4)],
                                "interval_of": what, "reaches_bar": bool(reaches)}
    if note:
        evidence["note"] = _join(evidence.get("note"), note)
    return replace(verdict, passed=bool(verdict.passed or reaches), evidence=evidence)


def _join(first: Optional[str], second: str) -> str:
    return f"{first}; {second}" if first else second


def _holds(op: str, observed: float, threshold: float, tolerance: float) -> bool:
    if op == ">=":
        return observed >= threshold
    if op == "<=":
        return observed <= threshold
    if op == "==":
        return abs(observed - threshold) <= _EQ_TOL
    return abs(observed - threshold) <= tolerance


def _gap(op: str, observed: float, threshold: float, tolerance: float) -> float:
    """Signed so that a negative gap means short of (or outside) the bar."""
    if op == ">=":
        return observed - threshold
    if op == "<=":
        return threshold - observed
    if op == "==":
        return 0.0 - abs(observed - threshold)  # 0.0 - 0.0 is +0.0: an exact match prints "+0.00"
    return tolerance - abs(observed - threshold)


@dataclass(frozen=True)
class Verdict:
    id: str
    title: str
    observed: float
    op: str
    threshold: float
    unit: str
    gap: float
    passed: bool
    tolerance: float = 0.0
    evidence: dict = field(default_factory=dict)

    def line(self) -> str:
        """The one-line message every report and failing test shows, e.g.
        ``State 0 accuracy on digits: observed 93.10% vs expected >= 95.00% (gap -1.90 pp)``."""
        note = self.evidence.get("note")
        tail = f"; {note}" if note else ""
        return (f"{self.title}: observed {wording.number(self.observed, self.unit)} vs expected "
                f"{self.bar_text()} ({self.gap_text()}){tail}")

    def gap_text(self) -> str:
        """``gap -1.90 pp`` (signed: negative is short of the bar); a ``within`` bar says how
        far the observation lies from its target instead: ``off by 0.02 pp``."""
        if self.op == "within":
            return wording.off_by(self.observed, self.threshold, self.unit)
        return f"gap {wording.gap(self.gap, self.unit)}"

    def bar_text(self, esc: wording.Esc = wording.plain) -> str:
        """The bar in words: ``>= 95.00%``, ``within 0.1 pp of 70.00%``, with an SE tolerance."""
        tolerance = self.evidence.get("tolerance_se")
        k = tolerance.get("k") if isinstance(tolerance, dict) else None
        return wording.bar(self.op, self.threshold, self.unit, self.tolerance, k, esc)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verdict":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


_OVERRIDE = re.compile(r"^\s*(?P<id>[^<>=\s]+)\s*(?P<op>>=|<=|==)\s*(?P<value>[-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Override:
    id: str
    op: str
    threshold: float


def parse_override(text: str, source: str = "--expect", shown: str | None = None) -> Override:
    """Parse ``ID>=VALUE`` (or ``<=``, ``==``) as given to ``--expect`` (``source``: where it
    was given and ``shown``: the text as the user wrote it, for the message; an ini
    ``harness_bars`` line names itself)."""
    match = _OVERRIDE.match(text)
    shown = text if shown is None else shown
    if not match:
        example = ("e.g. --expect 'baseline/digits/state0/accuracy>=97'" if source == "--expect"
                   else "e.g. 'baseline/imagenet/state0/accuracy >= 75.9 %'")
        raise ExpectationError(
            f"{source} {shown!r}: expected the form ID>=VALUE, ID<=VALUE or ID==VALUE, {example}")
    try:
        value = float(match["value"])
    except ValueError:
        raise ExpectationError(f"{source} {shown!r}: VALUE must be a number, got {match['value']!r}")
    if not math.isfinite(value):
        raise ExpectationError(f"{source} {shown!r}: VALUE must be a finite number, got "
                               f"{match['value']!r} (= {value!r})")
    return Override(match["id"], match["op"], value)
