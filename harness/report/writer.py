"""Write report.json, report.md and report.html under ``<reports-dir>/latest/`` (atomically), and append
report.md to ``$GITHUB_STEP_SUMMARY`` when that variable is set. Pruning runs add their plots
under ``latest/plots/`` first (harness.report.pruning), so all three reports reference them."""
from __future__ import annotations

import os
from pathlib import Path

from harness import storage
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.pruning import write_plots


def write_reports(report: dict, reports_dir: Path) -> dict:
    latest = Path(reports_dir) / "latest"
    plots = write_plots(report, latest)
    if plots:
        report["plots"] = plots
    paths = {"json": storage.write_json(latest / "report.json", report)}
    markdown = render_markdown(report)
    paths["markdown"] = storage.write_text(latest / "report.md", markdown)
    paths["html"] = storage.write_text(latest / "report.html", render_html(report, latest))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    return paths
