"""Report writers: the session's verdicts as report.json, report.md, report.html and a terminal
table; the history of sessions; the checks of the reports folder."""
from harness.report.document import SCHEMA, build_report
from harness.report.folder import ReportsDirError, check_reports_dir
from harness.report.markdown import render_markdown
from harness.report.writer import publish_session, write_reports

__all__ = ["SCHEMA", "build_report", "check_reports_dir", "publish_session", "render_markdown",
           "ReportsDirError", "write_reports"]
