"""MkDocs hook: the generated tables (the options on docs/options.md, the names of a declared log
format on docs/logs.md) are written at build time from the code that defines them
(harness.doctables), so the pages list exactly what the code accepts."""
from harness.doctables import fill


def on_page_markdown(markdown, page, **kwargs):
    return fill(markdown)
