"""Report writers: the session's verdicts as report.json, report.md and a terminal table."""
from harness.report.document import SCHEMA, build_report
from harness.report.markdown import render_markdown
from harness.report.writer import write_reports

__all__ = ["SCHEMA", "build_report", "render_markdown", "write_reports"]
