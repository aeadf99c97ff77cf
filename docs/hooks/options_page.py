"""MkDocs hook: the options page's table is written at build time from harness/options.py
(harness.optiontable), so the page lists exactly the options the code defines."""
from harness.optiontable import fill


def on_page_markdown(markdown, page, **kwargs):
    if page.file.src_uri == "options.md":
        return fill(markdown)
    return markdown
