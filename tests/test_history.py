"""The history store: one row per verdict per session, trends, last green and regressions."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.logs import HEALTHY_RUN, SEED_RUN, write_research_log
from harness.expect import Expectation
from harness.gate import gate_problems
from harness.logs import parse_log
from harness.report import build_report, render_markdown
from harness.report.history import (ANOTHER_INPUT, BAR_MOVED, FILENAME, SAME, History, HistoryError,
                                    HistoryLocked, record_session)
from harness.report.html import render_html
from harness.report.terminal import regression_summary

ROOT = Path(__file__).resolve().parent.parent
ACC = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")
LOSS = Expectation("baseline/digits/state0/loss", "State 0 loss on digits", "<=", 0.5)


_FIRST_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, finished REAL NOT NULL, created TEXT
    NOT NULL, git_commit TEXT, profile TEXT NOT NULL, exit_status INTEGER, environment TEXT NOT NULL);
CREATE TABLE verdicts (session_id INTEGER NOT NULL REFERENCES sessions(id), verdict_id TEXT NOT NULL,
    observed REAL, op TEXT NOT NULL, threshold REAL NOT NULL, unit TEXT NOT NULL, gap REAL,
    passed INTEGER NOT NULL, verdict TEXT NOT NULL);
CREATE VIEW verdict_history AS SELECT v.session_id, s.created, s.finished, s.git_commit, s.profile,
    s.environment, v.verdict_id, v.observed, v.op, v.threshold, v.unit, v.gap, v.passed
    FROM verdicts v JOIN sessions s ON s.id = v.session_id;
"""


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


def test_the_same_run_getting_worse_is_a_regression(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360, {"run_id": "r1"})], "aaa", 1000), tmp_path)
    second = _report([ACC.evaluate_accuracy(300, 360, {"run_id": "r1"})], "bbb", 2000)
    history = record_session(second, tmp_path)
    trend = history["verdicts"][ACC.id]
    assert trend["relation"] == SAME and trend["regression"] is True
    assert history["regressions"] == [ACC.id]
    assert trend["change"] == pytest.approx(100 * (300 - 352) / 360)
    assert trend["previous"]["git_commit"] == "aaa" and trend["previous"]["passed"] is True
    assert trend["last_green"]["git_commit"] == "aaa"
    assert [s[2] for s in trend["series"]] == [True, False]
    assert second["verdicts"][0]["regression"] is True and second["counts"]["regressions"] == 1
    md = render_markdown(second)
    assert "| last green | change since previous |" in md
    assert "**FAIL (regression)**" in md and "-14.44 pp (was 97.78%, passed; session 1" in md
    assert "## Regressions" in md and "fell from 97.78%" in md
    assert regression_summary(second) == [f"REGRESSION  {ACC.id}: 97.78% in session 1 ("
                                          f"{second['history']['verdicts'][ACC.id]['previous']['created']})"
                                          f" -> 83.33% now"]
    assert gate_problems(second)[0].startswith("REGRESSION State 0 accuracy")


def test_a_raised_bar_is_a_moved_bar_not_a_regression(tmp_path):
    """Issue 10 item 5: `--expect ID>=99.99` on the same stored run printed
    `REGRESSION ... 97.78% -> 97.78%`."""
    record_session(_report([ACC.evaluate_accuracy(352, 360, {"run_id": "r1"})], "aaa", 1000), tmp_path)
    raised = ACC.with_threshold(">=", 99.99)
    second = _report([raised.evaluate_accuracy(352, 360, {"run_id": "r1"})], "bbb", 2000)
    history = record_session(second, tmp_path)
    trend = history["verdicts"][ACC.id]
    assert trend["relation"] == BAR_MOVED and trend["regression"] is False
    assert history["regressions"] == [] and second["counts"]["regressions"] == 0
    assert trend["change"] == 0.0
    md = render_markdown(second)
    assert "| **FAIL** |" in md and "regression" not in md.lower()
    assert "bar moved from >= 95.00% to >= 99.99%: +0.00 pp (was 97.78%, passed; session 1" in md
    assert regression_summary(second) == []
    assert gate_problems(second)[0].startswith("FAIL State 0 accuracy")
    html = render_html(second)
    assert "FAIL (regression)" not in html and "bar moved from &gt;= 95.00% to &gt;= 99.99%" in html


def test_another_input_is_not_a_regression(tmp_path):
    """Issue 10 item 5: judging a healthy log, then the seed's log, printed
    `REGRESSION ... 98.12% -> 74.12%`: two logs are two inputs, not one run that got worse."""
    logs = {run.name: parse_log(write_research_log(run, tmp_path / f"{run.name}.log"))
            for run in (HEALTHY_RUN, SEED_RUN)}
    bar = Expectation("baseline/cifar10/state0/accuracy", "State 0 accuracy on cifar10", ">=", 95.0, "%")
    reports = []
    for k, name in enumerate((HEALTHY_RUN.name, SEED_RUN.name)):
        record = logs[name]
        verdict = bar.evaluate(record.state(0).best_accuracy, {"run_id": record.run_id,
                                                               "source": record.source})
        report = build_report(profile="nightly", verdicts=[verdict], tests=[],
                              records={"baseline/cifar10": record},
                              environment={"git_commit": "c", "device": "cpu"},
                              started=k, finished=k + 1.0, exit_status=int(not verdict.passed))
        record_session(report, tmp_path / "reports")
        reports.append(report)
    trend = reports[1]["history"]["verdicts"][bar.id]
    assert trend["relation"] == ANOTHER_INPUT and trend["regression"] is False
    assert trend["previous"]["observed"] == 98.12 and trend["change"] is None
    assert trend["previous"]["input"] == f"log:research {tmp_path / 'healthy_cifar10.log'}"
    md = render_markdown(reports[1])
    assert "another input (was 98.12%, passed on log:research" in md and "## Regressions" not in md
    assert regression_summary(reports[1]) == []


def test_judging_a_healthy_log_then_the_seeds_log_prints_no_regression(pytester, tmp_path):
    """The issue's reproduction end to end: `pytest suites/baseline --from-log healthy.log`, then
    `--from-log seed.log`, with one reports folder."""
    reports = pytester.path / "reports"
    outputs = []
    for run in (HEALTHY_RUN, SEED_RUN):
        log = write_research_log(run, tmp_path / f"{run.name}.log")
        result = pytester.runpytest(str(ROOT / "suites" / "baseline"), "--from-log", str(log),
                                    "--reports-dir", str(reports), "-p", "no:randomly")
        outputs.append("\n".join(result.outlines))
    assert "PASS  baseline/cifar10/state0/accuracy" in outputs[0]
    assert "FAIL  baseline/cifar10/state0/accuracy" in outputs[1] and "REGRESSION" not in outputs[1]
    report = json.loads((reports / "latest" / "report.json").read_text())
    trend = report["history"]["verdicts"]["baseline/cifar10/state0/accuracy"]
    assert trend["relation"] == ANOTHER_INPUT and trend["previous"]["observed"] == 98.12
    assert report["counts"]["regressions"] == 0

def test_trends_are_keyed_by_device(tmp_path):
    """A verdict judged on a GPU is not compared with the same verdict judged on the CPU."""
    cpu = _report([ACC.evaluate_accuracy(352, 360, {"run_id": "r1"})], "aaa", 1000)
    record_session(cpu, tmp_path)
    gpu = _report([ACC.evaluate_accuracy(300, 360, {"run_id": "r1"})], "bbb", 2000)
    gpu["environment"].update(device="cuda:0", device_name="NVIDIA H100 80GB HBM3")
    history = record_session(gpu, tmp_path)
    assert history["device"] == "NVIDIA H100 80GB HBM3"
    assert history["verdicts"][ACC.id]["previous"] is None and history["regressions"] == []
    again = _report([ACC.evaluate_accuracy(340, 360, {"run_id": "r1"})], "ccc", 3000)
    history = record_session(again, tmp_path)   # back on the CPU: compared with session 1
    assert history["device"] == "cpu" and history["verdicts"][ACC.id]["previous"]["session"] == 1


def test_a_store_of_the_first_schema_gains_the_new_columns_and_claims_no_regression(tmp_path):
    """A history written before identities and devices were recorded: its rows compare as
    another input (no false regression), and its device is read from the stored environment."""
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.executescript(_FIRST_SCHEMA)
        conn.execute("INSERT INTO sessions VALUES (1, 1000.0, 't0', 'aaa', 'smoke', 0, ?)",
                     (json.dumps({"device": "cpu"}),))
        conn.execute("INSERT INTO verdicts VALUES (1, ?, 97.78, '>=', 95.0, '%', 2.78, 1, '{}')", (ACC.id,))
    history = record_session(_report([ACC.evaluate_accuracy(300, 360, {"run_id": "r1"})], "bbb", 2000),
                             tmp_path)
    trend = history["verdicts"][ACC.id]
    assert trend["previous"]["session"] == 1 and trend["relation"] == ANOTHER_INPUT
    assert history["regressions"] == [] and history["session"] == 2


def test_profiles_have_separate_histories(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000, profile="nightly"), tmp_path)
    history = record_session(_report([ACC.evaluate_accuracy(300, 360)], "bbb", 2000), tmp_path)
    assert history["verdicts"][ACC.id]["previous"] is None
    assert history["sessions_of_profile"] == 1


def test_a_file_that_is_not_a_history_store_is_named_in_the_error(tmp_path):
    (tmp_path / FILENAME).write_bytes(b"not sqlite at all, just text" * 10)
    with pytest.raises(HistoryError, match=r"history\.sqlite: not a harness history store"):
        History(tmp_path / FILENAME).check()



# --- issue 10 item 14: a locked store is a lock, not a broken store ---------------------------
_HOLD = """
import sys, time
from pathlib import Path
from harness.report.history import History
with History(Path(sys.argv[1])).locked():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(store: Path, seconds: float) -> subprocess.Popen:
    """Another harness process holding the store's lock for ``seconds``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(store), str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_session_waits_for_the_store_and_names_the_process_it_waits_for(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000), tmp_path)
    proc = _hold(tmp_path / FILENAME, 3)
    messages = []
    try:
        history = record_session_with(tmp_path, messages.append)
    finally:
        proc.wait(timeout=60)
    assert len(messages) == 1
    assert messages[0].startswith(f"{tmp_path / FILENAME} is in use by process {proc.pid} on ")
    assert messages[0].endswith("; waiting up to 600 s for it")
    assert history["session"] == 2


def record_session_with(reports: Path, notify) -> dict:
    report = _report([ACC.evaluate_accuracy(350, 360)], "bbb", 2000)
    history = History(reports / FILENAME, notify=notify)
    with history.locked():
        session = history.annotate(report)
        history.append(report, session)
    return report["history"]


@pytest.mark.slow
def test_a_store_held_longer_than_the_wait_is_reported_as_in_use_not_as_broken(tmp_path):
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000), tmp_path)
    proc = _hold(tmp_path / FILENAME, 60)
    try:
        with pytest.raises(HistoryLocked) as exc:
            History(tmp_path / FILENAME, lock_timeout=1, notify=lambda m: None).check()
    finally:
        proc.kill()
        proc.wait()
    message = str(exc.value)
    assert f"still in use by process {proc.pid} on " in message and "the store is intact" in message
    assert "not a harness history store" not in message and "move it away" not in message


def test_a_database_locked_by_another_program_is_not_called_a_broken_store(tmp_path):
    """Issue 10 item 14: a locked history.sqlite was reported as "not a harness history store"
    with advice that discards it."""
    record_session(_report([ACC.evaluate_accuracy(352, 360)], "aaa", 1000), tmp_path)
    other = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryLocked, match=r"locked by another process for 0\.5 s \(sqlite: "
                                                r"database is locked\); the store is intact"):
            History(tmp_path / FILENAME, lock_timeout=0.5).check()
    finally:
        other.rollback()
        other.close()
    History(tmp_path / FILENAME).check()
    assert len(History(tmp_path / FILENAME).sessions()) == 1

def _kill_mid_training(args, cwd: Path, run_dir: Path) -> None:
    """Start a ``--rerun`` session in its own process and SIGKILL it while it trains."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args, "--rerun"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 1800     # a hang guard only: a loaded machine is slow, not wrong
        while (run_dir / "record.json").exists():  # --rerun clears the stored run, then trains
            assert proc.poll() is None and time.monotonic() < deadline, "the session never started training"
            time.sleep(0.2)
        time.sleep(3)
        assert proc.poll() is None, "the session ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_smoke_sessions_killed_rerun_and_a_raised_bar_is_a_moved_bar(pytester, one_thread):
    """The real baseline suite: session 1 trains; a --rerun session is killed mid-training and
    leaves no history and no report; the next session trains what the kill left and gives the
    same verdict as session 1; the last reuses the stored run with one bar raised by --expect:
    the history shows one entry per verdict per finished session, and the raised bar as a moved
    bar, not as a regression (issue 10 item 5 printed `REGRESSION ... 97.78% -> 97.78%`)."""
    suite = pytester.path / "test_baseline_suite_copy.py"  # a name no other module has
    suite.write_text((ROOT / "suites" / "baseline" / "test_baseline.py").read_text().replace(
        "from ..profiles import", "from suites.profiles import"))      # outside its package
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
    assert not [line for line in forced.outlines if "REGRESSION" in line]
    forced.stdout.fnmatch_lines([f"FAIL  {ACC.id}  *>= 99.99%*",
                                 "harness: FAILED, 0/1 verdicts passed: 1 verdict failed"])
    with sqlite3.connect(reports / FILENAME) as conn:
        counts = conn.execute("SELECT verdict_id, count(*), sum(passed) FROM verdict_history"
                              " GROUP BY verdict_id").fetchall()
    assert counts == [(ACC.id, 3, 2)]
    report = json.loads((reports / "latest" / "report.json").read_text())
    assert report["verdicts"][0]["regression"] is False
    trend = report["history"]["verdicts"][ACC.id]
    assert trend["relation"] == BAR_MOVED and trend["change"] == 0.0  # the stored run was reused
    md = (reports / "latest" / "report.md").read_text()
    assert "(regression)" not in md and "bar moved from >= 95.00% to >= 99.99%: +0.00 pp (was " in md


def test_a_corrupt_history_is_a_usage_error(pytester):
    reports = pytester.path / "reports"
    reports.mkdir()
    (reports / FILENAME).write_text("garbage " * 100)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--profile", "smoke", "--reports-dir", str(reports))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*history.sqlite: not a harness history store*"])


def _folder_session(tmp_path, folder: str, observed: float, finished: float) -> dict:
    """A session judging one run folder from its files, evidence as harness.runfolder writes it
    (``run``: the record's source and the folder; no run id)."""
    bar = Expectation("pruning/rsst/state1/sparsity", "rsst State 1 sparsity", "within", 20.0, "%", 0.1)
    verdict = bar.evaluate(observed, {"file": "1checkpoint.pth.tar", "stored_as": "weight_orig",
                                      "run": f"run:research {folder}"})
    report = build_report(profile="nightly", verdicts=[verdict], tests=[], records={},
                          environment={"git_commit": "c", "device": "cpu"},
                          started=finished - 1, finished=finished, exit_status=int(not verdict.passed))
    record_session(report, tmp_path)
    return report["history"]["verdicts"][bar.id]


def test_another_run_folder_with_the_same_log_is_another_input_not_a_regression(tmp_path):
    """Issue 21 item 5: a different run folder with the same log text was labelled REGRESSION
    (the findings' evidence names the folder under ``run``, which keyed nothing)."""
    _folder_session(tmp_path, "/runs/a", 20.0, 1000)
    trend = _folder_session(tmp_path, "/runs/b", 25.0, 2000)
    assert trend["relation"] == ANOTHER_INPUT and trend["regression"] is False
    assert trend["previous"]["input"] == "run run:research /runs/a"
    again = _folder_session(tmp_path, "/runs/b", 30.0, 3000)     # the same folder again: same run
    assert again["relation"] == SAME and again["change"] == pytest.approx(5.0)


def test_a_verdict_naming_no_input_is_keyed_by_the_sessions_one_run(tmp_path):
    """A verdict whose evidence names nothing (a suite's own check) in a session that judged one
    run folder is that run's: two folders (two run ids, the same log) are two inputs."""
    from harness.record import RunRecord

    bar = Expectation("mine/state0/trained", "trained", "==", 0.0)
    trends = []
    for k, run_id in enumerate(("run-aaaa", "run-bbbb")):
        record = RunRecord(run_id=run_id, source="run:research", dataset="cifar10", num_classes=10,
                           model="vit", notes={"log": "/logs/same.log"})
        report = build_report(profile="nightly", verdicts=[bar.evaluate(float(k))], tests=[],
                              records={"pruning/rsst": record},
                              environment={"git_commit": "c", "device": "cpu"},
                              started=k, finished=k + 1.0, exit_status=k)
        record_session(report, tmp_path)
        trends.append(report["history"]["verdicts"][bar.id])
    assert trends[1]["relation"] == ANOTHER_INPUT and trends[1]["regression"] is False
    assert trends[1]["previous"]["input"] == "run:research run-aaaa"
