"""A regular expression a user declares (a log's format, a run folder's lines), compiled with
bounds: its length, and no repetition nested in a repetition (like ``(a+)+``), whose matching time
can explode on a long line. One guard for every declared pattern."""
from __future__ import annotations

import re

try:                                    # Python 3.11+
    from re import _parser as _sre     # type: ignore[attr-defined]
except ImportError:                     # pragma: no cover - older Pythons
    import sre_parse as _sre            # type: ignore[no-redef]

MAX_PATTERN_CHARS = 500
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


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
    if _nested_repeat(tree, False):
        raise PatternError(f"{what} {text!r} repeats a group that itself repeats (like (a+)+): its "
                           f"time can explode on a long line; write it without the nesting")
    return pattern


def _nested_repeat(tree, inside: bool) -> bool:
    for op, arg in tree:
        name = str(op)
        if name in _REPEATS:
            many = arg[1] > 1          # an optional (?) part repeats nothing
            if (inside and many) or _nested_repeat(arg[2], inside or many):
                return True
        elif name == "SUBPATTERN" and _nested_repeat(arg[-1], inside):
            return True
        elif name == "BRANCH" and any(_nested_repeat(b, inside) for b in arg[1]):
            return True
    return False
