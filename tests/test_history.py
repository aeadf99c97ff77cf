"""The history store: one row per verdict per session, trends, last green and regressions."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.expect import Expectation
from harness.report import build_report, render_markdown
from harness.report.history import FILENAME, History, HistoryError, record_session

ROOT = Path(__file__).resolve().parent.parent
ACC = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")
LOSS = Expectation("baseline/digits/state0/loss", "State 0 loss on digits", "<=", 0.5)


def _report(verdicts, commit="c0ffee", finished=1000.0, profile="smoke"):
    return build_report(profile=profile, verdicts=verdicts, tests=[], records={},
                        environment={"git_commit": commit, "device": "cpu"}, started=finished - 5,
                        finished=finished, exit_status=0)


def test_two_sessions_give_two_rows_per_verdict_with_commit_profile_environment_and_time(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360), LOSS.evaluate(0.3)], "aaa", 1000), tmp_path)
    record_session(_report([ACC.evaluate_accuracy(350, 360), LOSS.evaluate(0.4)], "bbb", 2000), tmp_path)
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        rows = conn.execute("SELECT verdict_id, git_commit, profile, environment, finished, observed"
                            " FROM verdict_history ORDER BY verdict_id, session_id").fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (ACC.id, "aaa", "smoke", 1000.0), (ACC.id, "bbb", "smoke", 2000.0),
        (LOSS.id, "aaa", "smoke", 1000.0), (LOSS.id, "bbb", "smoke", 2000.0)]
    assert json.loads(rows[0][3]) == {"git_commit": "aaa", "device": "cpu"}
    assert rows[1][5] == pytest.approx(100 * 350 / 360)


def test_change_last_green_and_regression_against_previous_session(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000), tmp_path)
    second = _report([ACC.with_threshold(">=", 99.99).evaluate_accuracy(350, 360)], "bbb", 2000)
    history = record_session(second, tmp_path)
    trend = history["verdicts"][ACC.id]
    assert trend["regression"] is True and history["regressions"] == [ACC.id]
    assert trend["change"] == pytest.approx(100 * (350 - 352) / 360)
    assert trend["previous"]["git_commit"] == "aaa" and trend["previous"]["passed"] is True
    assert trend["last_green"]["git_commit"] == "aaa"
    assert [s[2] for s in trend["series"]] == [True, False]
    assert second["verdicts"][0]["regression"] is True and second["counts"]["regressions"] == 1
    md = render_markdown(second)
    assert "| last green | change since previous |" in md
    assert "**FAIL (regression)**" in md and "-0.56 pp (was 97.78%, passed" in md
    assert "## Regressions" in md and "fell from 97.78%" in md


def test_a_verdict_failing_twice_is_not_a_regression_and_a_new_one_has_no_previous(tmp_path):
    failing = ACC.with_threshold(">=", 99.0)
    record_session(_report([failing.evaluate_accuracy(300, 360)], "aaa", 1000), tmp_path)
    second = _report([failing.evaluate_accuracy(301, 360), LOSS.evaluate(0.2)], "bbb", 2000)
    history = record_session(second, tmp_path)
    assert history["regressions"] == []
    assert history["verdicts"][ACC.id]["last_green"] is None
    assert history["verdicts"][LOSS.id]["previous"] is None
    md = render_markdown(second)
    assert "| never |" in md and "first session" in md and "## Regressions" not in md


def test_profiles_have_separate_histories(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000, profile="nightly"), tmp_path)
    history = record_session(_report([ACC.evaluate_accuracy(300, 360)], "bbb", 2000), tmp_path)
    assert history["verdicts"][ACC.id]["previous"] is None
    assert history["sessions_of_profile"] == 1


def test_a_file_that_is_not_a_history_store_is_named_in_the_error(tmp_path):
    (tmp_path / FILENAME).write_bytes(b"not sqlite at all, just text" * 10)
    with pytest.raises(HistoryError, match=r"history\.sqlite: not a harness history store"):
        History(tmp_path / FILENAME).check()



def _kill_mid_training(args, cwd: Path, run_dir: Path) -> None:
    """Start a ``--rerun`` session in its own process and SIGKILL it while it trains."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args, "--rerun"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while (run_dir / "record.json").exists():  # --rerun clears the stored run, then trains
            assert proc.poll() is None and time.monotonic() < deadline, "the session never started training"
            time.sleep(0.2)
        time.sleep(3)
        assert proc.poll() is None, "the session ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_smoke_sessions_killed_rerun_and_a_forced_bar_marks_a_regression(pytester, one_thread):
    """The real baseline suite: session 1 trains; a --rerun session is killed mid-training and
    leaves no history and no report; the next session trains what the kill left and gives the
    same verdict as session 1; the last reuses the stored run with one bar forced up, and the
    history shows one entry per verdict per finished session and the regression."""
    suite = pytester.path / "test_baseline_suite_copy.py"  # a name no other module has
    shutil.copy(ROOT / "suites" / "baseline" / "test_baseline.py", suite)
    reports = pytester.path / "reports"
    args = ["--profile", "smoke", "--device", "cpu", "--no-progress", "--reports-dir", str(reports),
            "-p", "no:cacheprovider", suite.name]
    pytester.runpytest(*args).assert_outcomes(passed=1, skipped=3)
    first = json.loads((reports / "latest" / "report.json").read_text())
    (run_dir,) = [p for p in (reports / "runs").iterdir() if p.is_dir()]

    _kill_mid_training(args, pytester.path, run_dir)
    assert not (run_dir / "record.json").exists()
    assert json.loads((reports / "latest" / "report.json").read_text())["created"] == first["created"]
    assert len(History(reports / FILENAME).sessions()) == 1  # the killed session left no row

    pytester.runpytest(*args).assert_outcomes(passed=1, skipped=3)
    again = json.loads((reports / "latest" / "report.json").read_text())
    same = ("id", "observed", "op", "threshold", "gap", "passed", "evidence")
    assert [{k: v[k] for k in same} for v in again["verdicts"]] == \
        [{k: v[k] for k in same} for v in first["verdicts"]]

    forced = pytester.runpytest(*args, "--expect", f"{ACC.id}>=99.99")
    forced.assert_outcomes(failed=1, skipped=3)
    forced.stdout.fnmatch_lines([f"REGRESSION  {ACC.id}: *% in session 2 * -> *% now"])
    with sqlite3.connect(reports / FILENAME) as conn:
        counts = conn.execute("SELECT verdict_id, count(*), sum(passed) FROM verdict_history"
                              " GROUP BY verdict_id").fetchall()
    assert counts == [(ACC.id, 3, 2)]
    report = json.loads((reports / "latest" / "report.json").read_text())
    assert report["verdicts"][0]["regression"] is True
    assert report["history"]["verdicts"][ACC.id]["change"] == 0.0  # the stored run was reused
    md = (reports / "latest" / "report.md").read_text()
    assert "**FAIL (regression)**" in md and "+0.00 pp (was " in md


def test_a_corrupt_history_is_a_usage_error(pytester):
    reports = pytester.path / "reports"
    reports.mkdir()
    (reports / FILENAME).write_text("garbage " * 100)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--profile", "smoke", "--reports-dir", str(reports))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*history.sqlite: not a harness history store*"])
