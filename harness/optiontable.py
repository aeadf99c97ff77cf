"""The options table of the documentation (docs/options.md), written from :data:`OPTIONS`, the one
place every option is defined, so that the page cannot drift from the code. Imports no torch."""
from __future__ import annotations

from harness.options import OPTIONS, OptionSpec

MARKER = "<!-- options-table -->"
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


def table() -> str:
    """Every option as one markdown table row, in :data:`OPTIONS`' order."""
    return HEADER + "".join(row(spec) for spec in OPTIONS)


def fill(markdown: str) -> str:
    """``markdown`` with its :data:`MARKER` replaced by the table; a page without the marker is
    returned unchanged."""
    return markdown.replace(MARKER, table())
