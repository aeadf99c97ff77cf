"""Reading a report.json written elsewhere (`harness report`, `harness gate`): strict JSON of
bounded size, checked field by field against the schema before anything renders or judges it.

A report that breaks the schema is refused with one line naming the field, what it must be and
what it holds, e.g. ``verdicts[0].passed must be true or false, got 'false'``: a gate that read
the string "false" as a passing verdict, or a renderer that tracebacks on a missing key, would
judge a file nobody can trust.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

from harness.expect import OPS
from harness.report.document import SCHEMA

MAX_REPORT_BYTES = 256 * 2**20


class ReportError(ValueError):
    """A report.json that cannot be read or breaks the schema; the message is one line."""


@dataclass(frozen=True)
class Kind:
    """A leaf of the schema: what the value must be, and the test."""

    expected: str
    test: Callable[[Any], bool]


@dataclass(frozen=True)
class Record:
    """An object with known fields: ``{name: (spec, required)}``; other fields are allowed."""

    fields: dict
    nullable: bool = False


@dataclass(frozen=True)
class ListOf:
    item: "Spec"


@dataclass(frozen=True)
class MapOf:
    value: "Spec"


Spec = Union[Kind, Record, ListOf, MapOf]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


NUMBER = Kind("a finite number", _number)
NUMBER_OR_NULL = Kind("a finite number or null", lambda v: v is None or _number(v))
INT = Kind("an integer", _int)
INT_OR_NULL = Kind("an integer or null", lambda v: v is None or _int(v))
STR = Kind("a string", lambda v: isinstance(v, str))
STR_OR_NULL = Kind("a string or null", lambda v: v is None or isinstance(v, str))
BOOL = Kind("true or false", lambda v: isinstance(v, bool))
OBJECT = Kind("an object", lambda v: isinstance(v, dict))
ANY = Kind("any JSON value", lambda v: True)
OP = Kind(f"one of {', '.join(OPS)}", lambda v: isinstance(v, str) and v in OPS)
PLOT = Kind("a path plots/NAME.png (NAME of letters, digits, '.', '_', '-')",
            lambda v: isinstance(v, str) and re.fullmatch(r"plots/[A-Za-z0-9._-]+\.png", v) is not None)
POINT = Kind("[created, observed, passed]", lambda v: isinstance(v, list) and len(v) == 3
             and isinstance(v[0], str) and (v[1] is None or _number(v[1])) and isinstance(v[2], bool))
PAIR = Kind("[left, total] integers", lambda v: isinstance(v, list) and len(v) == 2 and all(map(_int, v)))

VERDICT = Record({"id": (STR, True), "title": (STR, True), "observed": (NUMBER_OR_NULL, True),
                  "op": (OP, True), "threshold": (NUMBER_OR_NULL, True), "unit": (STR, True),
                  "gap": (NUMBER_OR_NULL, True), "passed": (BOOL, True),
                  "tolerance": (NUMBER, False), "evidence": (OBJECT, False),
                  "regression": (BOOL, False)})
ENTRY = Record({"session": (INT, True), "created": (STR, True), "git_commit": (STR_OR_NULL, False),
                "observed": (NUMBER_OR_NULL, True), "passed": (BOOL, True),
                "input": (STR_OR_NULL, False), "op": (STR, False),
                "threshold": (NUMBER_OR_NULL, False), "tolerance": (NUMBER_OR_NULL, False)},
               nullable=True)
TREND = Record({"previous": (ENTRY, True), "last_green": (ENTRY, True), "change": (NUMBER_OR_NULL, True),
                "regression": (BOOL, True), "relation": (STR, False), "series": (ListOf(POINT), False)})
HISTORY = Record({"store": (STR, False), "session": (INT, False), "device": (STR_OR_NULL, False),
                  "sessions_of_profile": (INT, False), "regressions": (ListOf(STR), False),
                  "skipped": (ListOf(STR), False),
                  "verdicts": (MapOf(TREND), False)}, nullable=True)
STATE = Record({"state": (INT, True), "best_accuracy": (NUMBER_OR_NULL, True),
                "final_accuracy": (NUMBER_OR_NULL, True), "sparsity": (NUMBER_OR_NULL, True),
                "epochs": (INT, True), "seconds": (NUMBER_OR_NULL, True),
                "images_per_s": (NUMBER_OR_NULL, True), "peak_memory_mb": (NUMBER_OR_NULL, True),
                "checkpoint": (STR_OR_NULL, False), "test_curve": (ListOf(NUMBER_OR_NULL), False),
                "method": (STR_OR_NULL, False), "target_sparsity": (NUMBER_OR_NULL, False),
                "stored_accuracy": (NUMBER_OR_NULL, False), "channels_left": (MapOf(PAIR), False),
                "penalty_coefficient": (NUMBER_OR_NULL, False)})
LOG = Record({"log_path": (STR_OR_NULL, False), "lines_total": (INT_OR_NULL, False),
              "lines_not_understood": (INT_OR_NULL, False), "undecodable_lines": (INT_OR_NULL, False),
              "unfinished_last_line": (STR_OR_NULL, False),
              "not_understood_examples": (ListOf(STR), False)}, nullable=True)
RUN = Record({"case": (STR, True), "run_id": (STR, True), "source": (STR, True),
              "model": (STR_OR_NULL, False), "dataset": (STR_OR_NULL, False),
              "init": (STR_OR_NULL, False), "reused": (BOOL, True), "complete": (BOOL, False),
              "states": (ListOf(STATE), True), "log": (LOG, False)})
REPORT = Record({
    "schema": (Kind(f"{SCHEMA!r}", lambda v: v == SCHEMA), True), "profile": (STR, True),
    "created": (STR, True), "session_id": (STR_OR_NULL, False),
    "timings": (Record({"started": (NUMBER, False), "finished": (NUMBER, True),
                        "duration_s": (NUMBER, True)}), True),
    "counts": (Record({"verdicts": (INT, True), "passed": (INT, True), "failed": (INT, True),
                       "tests": (MapOf(INT), False), "regressions": (INT, False)}), True),
    "exit_status": (INT_OR_NULL, False), "options": (OBJECT, False), "environment": (OBJECT, False),
    "verdicts": (ListOf(VERDICT), True), "tests": (ListOf(OBJECT), False),
    "runs": (ListOf(RUN), False), "plots": (MapOf(PLOT), False), "history": (HISTORY, False)})


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check(value: Any, spec: Spec, where: str) -> None:
    if isinstance(spec, Kind):
        if not spec.test(value):
            raise ReportError(f"{where} must be {spec.expected}, got {_shown(value)}")
    elif isinstance(spec, Record):
        if value is None and spec.nullable:
            return
        if not isinstance(value, dict):
            raise ReportError(f"{where or 'the report'} must be an object, got {_shown(value)}")
        for name, (inner, required) in spec.fields.items():
            if name in value:
                _check(value[name], inner, f"{where}.{name}" if where else name)
            elif required:
                raise ReportError(f"{where + '.' if where else ''}{name} is missing")
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise ReportError(f"{where} must be a list, got {_shown(value)}")
        for i, item in enumerate(value):
            _check(item, spec.item, f"{where}[{i}]")
    else:
        if not isinstance(value, dict):
            raise ReportError(f"{where} must be an object, got {_shown(value)}")
        for key, item in value.items():
            _check(item, spec.value, f"{where}[{key!r}]")


def validate_report(data: Any) -> dict:
    """``data`` itself when it follows report.json's schema; else ReportError naming the field."""
    _check(data, REPORT, "")
    return data


def _refuse_constant(name: str) -> None:
    raise ReportError(f"not strict JSON: {name} is not a JSON number")


def read_report(path: Path) -> dict:
    """Read and validate the report.json at ``path`` (ReportError: one line naming the file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise ReportError(f"{size:,} bytes, more than the {MAX_REPORT_BYTES:,} a report.json may hold")
        text = path.read_bytes().decode("utf-8")
        return validate_report(json.loads(text, parse_constant=_refuse_constant))
    except ReportError as exc:
        raise ReportError(f"{path}: not a harness report: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not a harness report: not JSON ({exc.msg} at line "
                          f"{exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not a harness report: not UTF-8 text (byte {exc.start})") from None
    except (OSError, RecursionError) as exc:
        raise ReportError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
