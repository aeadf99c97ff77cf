"""Text from outside (log lines, file names, checkpoint keys, arguments) made safe for each medium
it is written to: a terminal, markdown (report.md, the GitHub job summary), HTML, and JSON.

Every writer of untrusted text goes through one of these functions:

- :func:`terminal`: control characters (escape sequences, carriage returns, bells) and Unicode
  bidi overrides become visible ``\\x1b``-style text, so a log cannot clear the screen, move the
  cursor or print a fake ``PASS`` line over a real one.
- :func:`md_text` / :func:`md_code`: plain text or a code span inside a markdown table cell; no
  HTML, link, emphasis or cell break survives, and only the characters that could do something
  where they stand are escaped, so the raw file stays readable (``2026-12-05T20:53:55+0000``,
  ``97.78%``).
- :func:`html_text`: HTML-escaped, control characters shown.
- :func:`json_safe` / :func:`dumps`: strict JSON (RFC 8259): non-finite floats become ``null``,
  so ``jq`` and ``JSON.parse`` read every file the harness writes.
"""
from __future__ import annotations

import html
import json
import math
import re
from typing import Any

# C0 and C1 controls but the tab, DEL, the Unicode bidi embeddings/overrides/isolates (which
# reorder what a reader sees), the line and paragraph separators, and lone surrogates (the
# bytes of a file name that is not UTF-8).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                      "\u2066-\u2069\ud800-\udfff]")
# Markdown specials wherever they stand: escapes, code spans, emphasis, links, HTML, table cells,
# strikethrough and math; "_" only where it can open or close emphasis (not inside a word); "&"
# only where it starts an entity.
_MD_ANYWHERE = re.compile(r"[\\`*\[\]<|~$]|(?<![^\W_])_|_(?![^\W_])|&(?=#?\w{1,32};)")
# ... and at the start of the text (a list item or a table cell): a heading, a list marker, a
# blockquote, an ordered-list number, a thematic break.
_MD_START = re.compile(r"^(\s*)(?:(\d{1,9})([.)])(?=\s|$)|(#{1,6}(?=\s|$)|[-+](?=\s|$)|>|[-=](?=[-=\s]*$)))")
_BACKTICKS = re.compile(r"`+")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``)."""
    value = str(text)

    def swap(m: re.Match) -> str:
        return m.group(0) if keep_newlines and m.group(0) == "\n" else _visible(m.group(0))
    return _CONTROL.sub(swap, value)


def terminal(text: object) -> str:
    """One line safe to print to a terminal."""
    return visible_controls(text)


def md_text(text: object) -> str:
    """Plain text inside markdown (a table cell, a list item): every character that would
    render as markdown or HTML where it stands is backslash-escaped, controls are visible, so
    nothing renders but the text itself; the rest (``-``, ``.``, ``+``, ``:``, ``%``) is left
    as typed."""
    value = _MD_ANYWHERE.sub(lambda m: "\\" + m.group(0), visible_controls(text))
    return _MD_START.sub(_escape_start, value, count=1)


def _escape_start(m: re.Match) -> str:
    space, number, after, marker = m.groups()
    if number is not None:            # "1. x" would start an ordered list: "1\. x"
        return f"{space}{number}\\{after}"
    return f"{space}\\{marker}"


def md_code(text: object) -> str:
    """A markdown code span holding ``text`` verbatim (controls visible). The fence is one
    backtick longer than the longest run inside, and a ``|`` is escaped so a table cell holds."""
    value = visible_controls(text).replace("|", "\\|")
    runs = [len(r) for r in _BACKTICKS.findall(value)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def html_text(text: object) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(visible_controls(text), quote=True)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON ``null``), recursively; tuples
    and sets become lists, other non-JSON values their ``to_dict()`` or ``str()``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return json_safe(obj.to_dict())
    if hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj`` (see :func:`json_safe`); raises if anything non-finite is left."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)
