"""Issue 22 item 1: `harness gate` passes only the latest session's report. A session that stops
before writing its reports (a usage error, a full disk) leaves the previous night's ``latest/``;
the gate refused nothing and passed it. Each session now marks ``latest/session.json`` first and
its report carries the marker's id."""
import json
from pathlib import Path

import pytest

from harness.cli import main as cli_main
from harness.report import marker

SUITE = """
from harness.suite import Bar

HARNESS_BARS = [Bar("tiny/value", "a value", ">=", 1.0, "")]


def test_value(harness):
    harness.check("tiny/value", 2.0)
"""


def _session(pytester: pytest.Pytester, reports: Path, *args: str):
    pytester.makepyfile(test_tiny=SUITE)
    return pytester.runpytest("-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                              "--harness-reports-dir", str(reports), *args)


def test_a_session_that_stops_before_its_reports_fails_the_gate(pytester, capsys):
    reports = pytester.path / "reports"
    assert _session(pytester, reports).ret == 0
    latest = reports / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert json.loads((latest / marker.FILENAME).read_text())["session_id"] == report["session_id"]
    assert cli_main(["gate", str(latest)]) == 0
    assert "gate: passed (1/1" in capsys.readouterr().out

    # tonight's session: the init file is gone from the runner (a usage error, exit 4)
    stopped = _session(pytester, reports, "--harness-init", str(pytester.path / "gone.pth"))
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    assert json.loads((latest / "report.json").read_text()) == report   # last night's, untouched
    assert cli_main(["gate", str(latest)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("the last session (id ") and "did not finish" in out[0]
    assert out[-1].startswith("gate: FAILED")
    assert cli_main(["gate", str(latest / "report.json")]) == 1      # the file itself: the same

    # the next session that finishes passes again
    assert _session(pytester, reports).ret == 0
    assert cli_main(["gate", str(latest)]) == 0


def test_collect_only_marks_nothing(pytester):
    reports = pytester.path / "reports"
    assert _session(pytester, reports, "--collect-only").ret == 0
    assert not (reports / "latest").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full device)")
def test_reports_that_cannot_be_written_give_one_line_and_a_failing_exit(pytester, monkeypatch):
    """A full disk ended the session with a raw ``OSError [Errno 28]``. /dev/full is a real full
    device: appending report.md to it (as $GITHUB_STEP_SUMMARY) fails with ENOSPC."""
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/dev/full")
    result = _session(pytester, pytester.path / "reports")
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    lines = [line for line in output.splitlines() if "reports were not written" in line]
    assert lines == [f"harness: the session's reports were not written under "
                     f"{pytester.path / 'reports'} (No space left on device: /dev/full); the "
                     f"session fails: free space or fix the folder, then run it again"]
    assert "Traceback" not in output and "INTERNALERROR" not in output and "Errno" not in output


def test_a_start_marker_that_cannot_be_written_is_one_line(pytester):
    """``latest`` is a file: the session stops before running anything, saying why."""
    reports = pytester.path / "reports"
    reports.mkdir()
    (reports / "latest").write_text("not a folder")
    result = _session(pytester, reports, "--harness-profile", "smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: --reports-dir {reports}: {reports / 'latest'} exists and is not a "
                      f"folder; move it away"]


def test_a_marker_that_is_not_one_is_refused(tmp_path, capsys):
    pytester_free = tmp_path / "latest"
    pytester_free.mkdir()
    (pytester_free / "report.json").write_text(json.dumps({
        "schema": "harness.report/1", "session_id": "a", "profile": "p", "created": "c",
        "timings": {"finished": 1.0, "duration_s": 1.0},
        "counts": {"verdicts": 0, "passed": 0, "failed": 0}, "verdicts": []}))
    (pytester_free / marker.FILENAME).write_text("[1, 2]")
    assert cli_main(["gate", str(pytester_free)]) == 1
    assert "not a session marker" in capsys.readouterr().out


def test_a_report_naming_a_session_whose_marker_is_gone_is_refused(pytester, capsys):
    """A session that cannot write its marker (a full disk) removes the previous one: the
    previous report names a session, and no marker vouches for it."""
    reports = pytester.path / "reports"
    assert _session(pytester, reports).ret == 0
    (reports / "latest" / marker.FILENAME).unlink()
    assert cli_main(["gate", str(reports / "latest")]) == 1
    assert "session.json: missing, though the report names its session" in capsys.readouterr().out
