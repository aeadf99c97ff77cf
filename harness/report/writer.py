"""Write report.json, report.md and report.html under ``<reports-dir>/latest/`` and append
report.md to ``$GITHUB_STEP_SUMMARY`` when that variable is set.

The three reports (and the pruning plots under ``latest/plots/``, harness.report.pruning) are
written into a temporary folder that then replaces ``latest/`` whole, so ``latest/`` never mixes
two sessions. :func:`publish_session` writes the reports first and the session's history row
last, under the history's lock: a kill in between leaves no history row without its reports.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from harness import storage
from harness.escape import dumps
from harness.report.folder import replace_folder
from harness.report import marker
from harness.report.history import FILENAME, History
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.pruning import write_plots

NAMES = {"json": "report.json", "markdown": "report.md", "html": "report.html"}


def _fill(report: dict) -> Callable[[Path], str]:
    def fill(folder: Path) -> str:
        plots = write_plots(report, folder)
        report.pop("plots", None)
        if plots:
            report["plots"] = plots
        storage.write_text(folder / NAMES["json"], dumps(report, indent=2) + "\n")
        markdown = render_markdown(report)
        storage.write_text(folder / NAMES["markdown"], markdown)
        storage.write_text(folder / NAMES["html"], render_html(report, folder))
        if report.get("session_id"):
            started = (report.get("timings") or {}).get("started") or 0.0
            storage.write_json(folder / marker.FILENAME,
                               marker.marker(report["session_id"], started, True))
        return markdown
    return fill


def write_reports(report: dict, reports_dir: Path) -> dict:
    """Replace ``<reports-dir>/latest/`` with ``report``'s reports; {kind: path}."""
    latest = Path(reports_dir) / "latest"
    markdown = replace_folder(latest, _fill(report))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(markdown)
        except OSError as exc:   # name the file: the error of a write or close names none
            raise OSError(exc.errno, exc.strerror, summary) from None
    return {kind: latest / name for kind, name in NAMES.items()}


def publish_session(report: dict, reports_dir: Path,
                    notify: Optional[Callable[[str], None]] = None) -> dict:
    """The end of a session: trends from the history, the reports, then the history row."""
    history = History(Path(reports_dir) / FILENAME, **({"notify": notify} if notify else {}))
    with history.locked():
        session = history.annotate(report)
        paths = write_reports(report, reports_dir)
        history.append(report, session)
    return paths


def publish_or_say(report: dict, reports_dir: Path) -> tuple[dict, str]:
    """:func:`publish_session`'s paths and "", or ({}, one line saying why the reports could
    not be written: a full disk, a folder gone read-only, a history store broken meanwhile)."""
    from harness.escape import terminal
    from harness.report.history import HistoryError

    try:
        return publish_session(report, reports_dir), ""
    except HistoryError as exc:
        reason = str(exc)
    except OSError as exc:
        reason = f"{marker.why(exc)}{f': {exc.filename}' if exc.filename else ''}"
    return {}, terminal(f"harness: the session's reports were not written under {reports_dir} "
                        f"({reason}); the session fails: free space or fix the folder, then run "
                        f"it again")


def updated_by_hooks(config, report: dict) -> str:
    """Run the ``pytest_harness_update_json`` hooks of pytest ``config`` on ``report``; "" when
    it is still a report, else the one line saying what they broke."""
    from harness.escape import dumps, terminal
    from harness.report.validate import ReportError, validate_report

    config.hook.pytest_harness_update_json(config=config, report=report)
    try:
        validate_report(report)
        dumps(report)
    except (ReportError, ValueError, TypeError) as exc:
        return terminal(f"harness: ERROR: a pytest_harness_update_json hook left the report invalid "
                        f"({exc}); no report was written: keep report.json's fields and strict "
                        f"JSON values")
    return ""
