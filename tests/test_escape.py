"""Escaping of untrusted text for terminal, markdown, HTML and JSON."""
import json
import math

from harness.escape import dumps, html_text, json_safe, md_code, md_text, terminal


def test_terminal_shows_escape_sequences_instead_of_running_them():
    hostile = "ok\x1b[2J\x1b[H\rPASS  fake\x07\u202eevil"
    shown = terminal(hostile)
    assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == "ok\\x1b[2J\\x1b[H\\x0dPASS  fake\\x07\\u202eevil"


def test_markdown_text_renders_nothing_but_text():
    shown = md_text("a|b `x` <img src=x onerror=alert(1)> [l](http://e) *e*\nnext")
    for raw in ("|", "`", "<", "[", "]", "*"):
        assert f"\\{raw}" in shown
    assert "\n" not in shown and "\\x0a" in shown
    assert "\\<img" in shown and " <img" not in shown
    assert "\\[l\\](http://e)" in shown            # no link: its brackets are escaped


def test_markdown_text_escapes_only_what_matters_where_it_stands():
    """report.md stays readable as raw text: timestamps, percentages, ids and words are as
    typed; a marker that would start a list, heading or quote at the start is escaped."""
    for plain in ("2026-12-05T20:53:55+0000", "97.78%", "-20.88 pp", "device_name", "a & b",
                  "log:imagenet-example run log-0a1b (x86_64, 2 threads)", "v1.2.3!"):
        assert md_text(plain) == plain
    assert [md_text(t) for t in ("# h", "- i", "+ i", "> q", "1. x", "---", "__init__", "&amp;")] == [
        "\\# h", "\\- i", "\\+ i", "\\> q", "1\\. x", "\\---", "\\_\\_init\\_\\_", "\\&amp;"]


def test_markdown_code_span_cannot_be_broken_out_of():
    text = "x`` y | <b>\r"
    span = md_code(text)
    assert span.startswith("```") and span.endswith("```")   # longer than the run of two inside
    assert "\\|" in span and "\r" not in span


def test_html_escapes_markup_and_controls():
    assert html_text('<a href="x">&\x1b') == "&lt;a href=&quot;x&quot;&gt;&amp;\\x1b"


def test_strict_json_writes_null_for_non_finite_values():
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": (1, 2)}
    text = dumps(data)
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": [1, 2]}
    assert "NaN" not in text and "Infinity" not in text
    assert json_safe({1: {2}}) == {"1": [2]}
