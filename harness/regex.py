"""A regular expression a user declares (a log's format, a run folder's lines), compiled with
bounds: its length; no repetition nested in a repetition (like ``(a+)+``); and, inside a
repetition, no part whose length varies (``(\\d|\\d\\d)*``, ``(\\d\\d?)*``) and no alternatives that
can begin with the same character (``(ab|a.)*``): each of these lets the matcher try
exponentially many ways to split a long line. One guard for every declared pattern."""
from __future__ import annotations

import re

try:                                    # Python 3.11+
    from re import _parser as _sre     # type: ignore[attr-defined]
except ImportError:                     # pragma: no cover - older Pythons
    import sre_parse as _sre            # type: ignore[no-redef]

MAX_PATTERN_CHARS = 500
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_ZERO_WIDTH = {"AT", "ASSERT", "ASSERT_NOT"}
_UNIVERSE = frozenset(range(0x800))     # the characters first sets are compared over
_CATEGORIES = {name: re.compile(text) for name, text in (
    ("CATEGORY_DIGIT", r"\d"), ("CATEGORY_NOT_DIGIT", r"\D"), ("CATEGORY_WORD", r"\w"),
    ("CATEGORY_NOT_WORD", r"\W"), ("CATEGORY_SPACE", r"\s"), ("CATEGORY_NOT_SPACE", r"\S"))}


class PatternError(ValueError):
    """A declared pattern that is refused; the message names it and says why."""


def compile_bounded(text: str, what: str) -> re.Pattern:
    """``text`` compiled, or a :class:`PatternError` naming ``what`` (e.g. "pattern epoch")."""
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"{what} is {len(text)} characters, over {MAX_PATTERN_CHARS}")
    try:
        pattern, tree = re.compile(text), _sre.parse(text)
    except re.error as exc:
        raise PatternError(f"{what} {text!r} is no regular expression ({exc})") from None
    why = _exploding(tree, False)
    if why:
        raise PatternError(f"{what} {text!r} {why}: its matching time can explode on a long "
                           f"line; write it so each repeated part has one length and one way "
                           f"to match (e.g. \\d{{1,9}} instead of (\\d|\\d\\d)*)")
    return pattern


def _exploding(tree, inside: bool) -> str:
    """Why ``tree`` (inside a repetition when ``inside``) can backtrack exponentially, or ''."""
    for op, arg in tree:
        name = str(op)
        if name in _REPEATS:
            many = arg[1] > 1          # an optional (?) part repeats nothing
            if inside and many:
                return "repeats a group that itself repeats (like (a+)+)"
            why = _exploding(arg[2], inside or many)
            if why:
                return why
            if many and name != "POSSESSIVE_REPEAT" and len(set(arg[2].getwidth())) > 1:
                return "repeats a part whose length varies (like (\\d|\\d\\d)* or (\\d\\d?)*)"
        elif name == "SUBPATTERN":
            why = _exploding(arg[-1], inside)
            if why:
                return why
        elif name == "BRANCH":
            if inside and _overlapping(arg[1]):
                return ("repeats alternatives that can begin with the same character "
                        "(like (ab|a.)*)")
            for branch in arg[1]:
                why = _exploding(branch, inside)
                if why:
                    return why
    return ""


def _overlapping(branches) -> bool:
    seen: set = set()
    nullable = False
    for branch in branches:
        chars, empty = _first(branch)
        if (empty and nullable) or (seen & chars):
            return True
        seen |= chars
        nullable = nullable or empty
    return False


def _first(seq) -> tuple:
    """(the characters a match of ``seq`` can begin with, whether it can match nothing);
    conservative: what is not understood can begin with any character."""
    chars: set = set()
    for op, arg in seq:
        name = str(op)
        if name in _ZERO_WIDTH:
            continue
        here, empty = _first_of(name, arg)
        chars |= here
        if not empty:
            return chars, False
    return chars, True


def _first_of(name: str, arg) -> tuple:
    if name == "LITERAL":
        return {arg}, False
    if name == "IN":
        return _in_set(arg), False
    if name == "SUBPATTERN":
        return _first(arg[-1])
    if name == "BRANCH":
        firsts = [_first(b) for b in arg[1]]
        return set().union(*(f[0] for f in firsts)), any(f[1] for f in firsts)
    if name in _REPEATS:
        chars, empty = _first(arg[2])
        return chars, empty or arg[0] == 0
    return set(_UNIVERSE), False        # ANY, NOT_LITERAL, a back reference, ...


def _in_set(items) -> set:
    chars: set = set()
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars.add(arg)
        elif name == "RANGE":
            chars |= set(range(arg[0], min(arg[1], max(_UNIVERSE)) + 1))
        elif name == "CATEGORY" and str(arg) in _CATEGORIES:
            test = _CATEGORIES[str(arg)]
            chars |= {c for c in _UNIVERSE if test.match(chr(c))}
        else:
            chars |= _UNIVERSE
    return set(_UNIVERSE - chars) if negate else chars
