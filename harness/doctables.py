"""The documentation's generated tables, written when the site is built (docs/hooks/tables.py)
from the one place each list is defined, so that the pages cannot drift from the code: the
options (docs/options.md, from :data:`harness.options.OPTIONS`) and the names of a declared log
format (docs/logs.md, from :data:`harness.logsyntax.NAMES`). Imports no torch."""
from __future__ import annotations

from harness import logsyntax
from harness.options import OPTIONS, OptionSpec

MARKER = "<!-- options-table -->"
NAMES_MARKER = "<!-- log-pattern-names -->"
HEADER = ("| option | short form | ini key | default | meaning |\n"
          "|---|---|---|---|---|\n")


def _cell(text: str) -> str:
    text = str(text).replace("\n", " ").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("*", "\\*")


def _flag(spec: OptionSpec) -> str:
    if not spec.cli:
        return "(ini only)"
    if spec.choices:
        return f"`{spec.flag} {{{','.join(spec.choices)}}}`"
    if spec.action == "store_true":
        return f"`{spec.flag}`"
    return f"`{spec.flag} {spec.metavar or spec.name.upper()}`"


def _default(spec: OptionSpec) -> str:
    if spec.action == "store_true" or spec.default in (None, (), False):
        return ""
    return f"`{spec.default}`"


def row(spec: OptionSpec) -> str:
    short = f"`{spec.short_flag}`" if spec.cli and spec.short else ""
    ini = f"`{spec.ini_key}`" + (" (one per line)" if spec.lines else "") if spec.ini else ""
    return f"| {_flag(spec)} | {short} | {ini} | {_default(spec)} | {_cell(spec.help)} |\n"


def options_table() -> str:
    """Every option as one markdown table row, in :data:`OPTIONS`' order."""
    return HEADER + "".join(row(spec) for spec in OPTIONS)


def names_table() -> str:
    """The names ``harness_log_patterns`` lines may use, one row each, in :data:`logsyntax.NAMES`' order."""
    return ("| name | what it reads |\n| --- | --- |\n"
            + "".join(f"| `{name}` | {_cell(text)} |\n" for name, text in logsyntax.NAMES.items()))


def fill(markdown: str) -> str:
    """``markdown`` with its markers replaced by their tables; a page without one is returned
    unchanged."""
    return markdown.replace(MARKER, options_table()).replace(NAMES_MARKER, names_table())
