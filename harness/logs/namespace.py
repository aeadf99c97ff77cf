"""The ``key=value, ...`` body of an argparse ``Namespace(...)`` line, read without evaluating code.

One linear scan splits the body at its top-level commas (brackets nested, quoted strings skipped
whole), so a line of any length is read in time and memory proportional to it; no syntax tree of
the whole line is ever built (one took ~550 bytes of memory per byte of line). A value is read as
a Python literal only when it is at most MAX_VALUE_CHARS long; a longer one is kept as the text of
its head and listed as cut. At most MAX_ARGUMENTS arguments are read.
"""
from __future__ import annotations

import ast
import json
import re
from typing import Any, Optional

from harness.logs.bounds import CUT_VALUE_CHARS, MAX_ARGUMENTS, MAX_VALUE_CHARS, Listed

_KEY = re.compile(r"\s*(\w{1,200})\s*=(?!=)")
_TOP = re.compile(r"[,()\[\]{}'\"]")        # what ends or nests a value at the top level
_NESTED = re.compile(r"[()\[\]{}'\"]")      # inside brackets, commas do not end it
_STRING = {"'": re.compile(r"'[^'\\]*(?:\\.[^'\\]*)*'"),    # unrolled: linear, no ambiguity
           '"': re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')}
_OPEN, _CLOSE = "([{", ")]}"


def read_namespace(body: str, args: dict, cut: Listed, pos: int = 0) -> dict:
    """``a=1, b='x', c=[1, 2]`` (``body`` from ``pos`` on) into ``args`` -> {'a': 1, 'b': 'x',
    'c': [1, 2]}; what was cut is listed in ``cut``."""
    size = len(body)
    while pos < size:
        key = _KEY.match(body, pos)
        start = key.end() if key else pos
        end = _value_end(body, start)
        if key and key[1] not in args and len(args) >= MAX_ARGUMENTS:
            cut.add(f"arguments after the first {MAX_ARGUMENTS} (from {key[1]!r} on): not read")
            break
        if key:
            args[key[1]] = _value(key[1], body, start, end, cut)
        if end >= size or body[end] != ",":
            break   # the Namespace closed (or the line ended)
        pos = end + 1
    return args


def _value_end(body: str, pos: int) -> int:
    """Where the value starting at ``pos`` ends: its top-level comma, the unmatched ``)`` that
    closes the Namespace, or the end of the line."""
    depth = 0
    while True:
        found = (_NESTED if depth else _TOP).search(body, pos)
        if found is None:
            return len(body)
        char, at = found.group(), found.start()
        if char in _STRING:
            string = _STRING[char].match(body, at)
            if string is None:
                return len(body)   # a string the line never closes: the rest is its value
            pos = string.end()
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE and depth:
            depth -= 1
        else:
            return at   # a top-level comma, or the Namespace's own closing parenthesis
        pos = at + 1


def _value(name: str, body: str, start: int, end: int, cut: Listed) -> Any:
    if end - start > MAX_VALUE_CHARS:
        cut.add(f"{name}: a value of {end - start:,} characters, over the {MAX_VALUE_CHARS:,} "
                f"read as a literal; kept as the text of its first {CUT_VALUE_CHARS}")
        return body[start:start + CUT_VALUE_CHARS].strip() + "..."
    return literal(body[start:end].strip())


def read_object(text: str) -> Optional[dict]:
    """A ``{...}`` argument list (JSON, or a Python dict as ``print(vars(args))`` writes it) as a
    dict, or None when ``text`` is neither. A Python literal is read only up to MAX_VALUE_CHARS
    (its syntax tree costs hundreds of bytes per byte); JSON at any length the line has."""
    text = text.strip()
    try:
        value = json.loads(text, parse_constant=str)   # NaN, Infinity kept as their text
    except (ValueError, RecursionError):
        value = None
        if len(text) <= MAX_VALUE_CHARS:
            try:
                value = ast.literal_eval(text)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                value = None
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items()}


def literal(text: str) -> Any:
    """A literal's value; any other expression (a call, a name) kept as its text, never run."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return ast.unparse(ast.parse(text, mode="eval"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
