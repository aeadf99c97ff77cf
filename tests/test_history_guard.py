"""Issue 22 item 6: the history store comes from disk. An endless ``verdict_history`` view hung
the session before any test; a TEXT ``observed`` gave a TypeError at the session's end and no
report; megabyte rows made report.json tens of megabytes. Real SQLite files, written as a hostile
store would be."""
import json
import sqlite3

import pytest

from harness.expect import Expectation
from harness.report import build_report, render_markdown
from harness.report.history import FILENAME, History, HistoryError, record_session

ACC = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")


def _report(observed_correct, finished):
    return build_report(profile="smoke", verdicts=[ACC.evaluate_accuracy(observed_correct, 360)],
                        tests=[], records={}, environment={"git_commit": "c", "device": "cpu"},
                        started=finished - 5, finished=finished, exit_status=0)


def _store(tmp_path, sessions: int = 2):
    for k in range(sessions):
        record_session(_report(350, 1000.0 + k), tmp_path)
    return tmp_path / FILENAME


ENDLESS = """
DROP VIEW verdict_history;
CREATE VIEW verdict_history AS
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
    SELECT v.session_id, s.created, s.finished, s.git_commit, s.profile, s.device, s.environment,
           v.verdict_id, v.input, v.observed, v.op, v.threshold, v.tolerance, v.unit, v.gap, v.passed
    FROM verdicts v JOIN sessions s ON s.id = v.session_id JOIN n ON n.i > 0;
"""


def test_a_view_the_harness_did_not_make_is_refused_in_one_line(tmp_path):
    store = _store(tmp_path)
    with sqlite3.connect(store) as conn:
        conn.executescript(ENDLESS)
    with pytest.raises(HistoryError) as refused:
        History(store).check()
    message = str(refused.value)
    assert message.startswith(f"{store}: holds view 'verdict_history', which the harness did not make")
    assert "DROP VIEW 'verdict_history'" in message and "\n" not in message


def test_a_trigger_is_refused(tmp_path):
    store = _store(tmp_path)
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TRIGGER t AFTER INSERT ON verdicts BEGIN SELECT 1; END")
    with pytest.raises(HistoryError, match=r"holds trigger 't', which the harness did not make"):
        record_session(_report(350, 3000.0), tmp_path)


def test_a_query_that_never_ends_is_stopped_by_a_step_budget_not_a_clock(tmp_path):
    """An endless query on a table the harness reads (no view needed): the progress handler stops
    it after the store's step budget (a count of SQLite steps)."""
    store = _store(tmp_path)
    history = History(store)
    history.max_steps = 2_000_000
    with pytest.raises(HistoryError) as refused, history._db() as conn:
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                     "SELECT count(*) FROM n").fetchone()
    assert str(refused.value).startswith(f"{store}: a query ran past 2,000,000 SQLite steps")


def test_a_row_of_the_wrong_type_or_size_is_skipped_and_named(tmp_path):
    store = _store(tmp_path, sessions=3)
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE verdicts SET observed = 'ninety' WHERE session_id = 1")
        conn.execute("UPDATE sessions SET git_commit = ? WHERE id = 2", ("x" * 2_000_000,))
    report = _report(300, 5000.0)
    history = record_session(report, tmp_path)      # no TypeError
    assert history["skipped"] == [
        f"session 1 verdict {ACC.id!r}: observed is text 'ninety', expected real or integer or null",
        f"session 2 verdict {ACC.id!r}: git_commit is longer than 128 characters"]
    trend = history["verdicts"][ACC.id]
    assert trend["previous"]["session"] == 3 and len(trend["series"]) == 2
    assert len(json.dumps(report)) < 20_000
    markdown = render_markdown(report)
    assert "rows not read into the trends" in markdown and "observed is text 'ninety'" in markdown


def test_a_session_over_a_hostile_store_says_it_before_any_test(pytester, tmp_path):
    reports = pytester.path / "reports"
    store = _store(reports)
    with sqlite3.connect(store) as conn:
        conn.executescript(ENDLESS)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--harness-profile", "smoke", "--harness-reports-dir", str(reports),
                                "-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "holds view 'verdict_history', which the harness did not make" in errors[0]
