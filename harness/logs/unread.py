"""Why a log gave nothing to judge, in one message: how it was read (the format and how it was
chosen, the formats tried), the first lines not understood (escaped for the terminal), and the
two ways out: ``harness log FILE`` to see what each format reads, ``harness_log_patterns`` to
declare the lab's own format."""
from __future__ import annotations

from harness.escape import terminal
from harness.record import RunRecord

SHOWN = 3   # lines not understood quoted


def why_unread(record: RunRecord) -> str:
    """The reasons and the ways out for a record read from a log that holds no evaluation."""
    notes = record.notes
    path = notes.get("log_path") or (record.environment or {}).get("path") or "FILE"
    fmt = record.source.removeprefix("log:")
    parts = [f"read as the {fmt} format ({notes.get('format_chosen', 'named')})",
             f"{notes.get('lines_understood', 0)} of {notes.get('lines_total', 0)} lines understood"]
    examples = list(notes.get("not_understood_examples") or [])[:SHOWN]
    if examples:
        parts.append("not understood: " + "; ".join(terminal(e) for e in examples))
    dropped = list(notes.get("epochs_without_test_accuracy") or [])[:SHOWN]
    if dropped:
        parts.append("epochs not entered: " + "; ".join(terminal(d) for d in dropped))
    return (terminal("; ".join(parts)) + f"; see what each format reads with `harness log "
            f"{terminal(path)}` (--pattern NAME=REGEX tries a declared one), or declare the log's "
            f"format in the ini file (harness_log_patterns, one 'name: regex' per line)")
