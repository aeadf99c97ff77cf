import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main as cli_main
from harness.expect import Expectation
from harness.gate import gate_problems, session_status
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.report import (ReportsDirError, build_report, check_reports_dir, publish_session,
                            render_markdown, write_reports)
from harness.report.history import FILENAME, History
from harness.report.terminal import status_line, summary_lines

ROOT = Path(__file__).resolve().parent.parent


def _report():
    ok = Expectation("a/ok", "A ok", ">=", 50, "%").evaluate_accuracy(90, 100)
    bad = Expectation("b/bad", "B bad", ">=", 95, "%").evaluate_accuracy(70, 100)
    return build_report(profile="smoke", verdicts=[ok, bad], tests=[{"nodeid": "t", "outcome": "failed"}],
                        records={}, environment={"torch": "x"}, started=0.0, finished=2.5)


def test_report_schema_orders_failures_first():
    report = _report()
    assert report["schema"] == "harness.report/1" and report["profile"] == "smoke"
    assert report["counts"] == {"verdicts": 2, "passed": 1, "failed": 1, "tests": {"failed": 1}}
    first = report["verdicts"][0]
    assert first["id"] == "b/bad" and first["passed"] is False
    assert set(first) >= {"id", "observed", "op", "threshold", "unit", "gap", "passed", "evidence"}
    assert first["evidence"]["n"] == 100 and len(first["evidence"]["wilson95"]) == 2


def test_markdown_table_and_step_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    paths = write_reports(_report(), tmp_path / "reports")
    md = paths["markdown"].read_text()
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `b/bad` | 70.00% | >= 95.00% | -25.00 pp | **FAIL**")
    assert rows[1].startswith("| `a/ok` | 90.00% | >= 50.00% | +40.00 pp | pass")
    assert summary.read_text() == "previous step\n" + md
    assert json.loads(paths["json"].read_text())["counts"]["failed"] == 1


def test_terminal_lines_fail_first():
    lines = summary_lines([Expectation("a", "A", ">=", 1).evaluate(2), Expectation("b", "B", ">=", 3).evaluate(2)])
    assert lines[0].startswith("FAIL  b") and lines[1].startswith("PASS  a")


def test_cli_report_renders_json_again(tmp_path, capsys):
    paths = write_reports(_report(), tmp_path)
    assert cli_main(["report", str(paths["json"].parent)]) == 0
    assert capsys.readouterr().out == render_markdown(json.loads(paths["json"].read_text()))
    assert cli_main(["report", str(tmp_path / "missing")]) == 2
    assert "no report.json there" in capsys.readouterr().err


# --- item 4: one rule for "passed" in report.md, report.html, the terminal and the gate ---------
def test_a_session_that_judged_nothing_is_failed_in_every_report_and_the_gate(tmp_path, capsys):
    """Issue 10 item 4: report.md said "passed, 0/0" while `harness gate` said FAILED."""
    empty = build_report(profile="smoke", verdicts=[], tests=[], records={}, environment={},
                         started=0.0, finished=1.0, exit_status=5)
    paths = write_reports(empty, tmp_path)
    md = paths["markdown"].read_text()
    assert md.startswith("# harness report: FAILED\n") and "passed" not in md.splitlines()[0]
    assert "**FAILED**: no verdict was recorded: the session judged nothing (pytest exit status 5)" in md
    assert "<h1 class=\"failed\">harness report: FAILED</h1>" in paths["html"].read_text()
    assert status_line(empty) == ("harness: FAILED, 0/0 verdicts passed: no verdict was recorded: "
                                  "the session judged nothing (pytest exit status 5)")
    assert cli_main(["gate", str(tmp_path / "latest")]) == 1
    assert "gate: FAILED (0/0 verdicts passed" in capsys.readouterr().out


def test_passing_verdicts_with_a_pytest_error_fail_in_the_report_as_in_the_gate(tmp_path):
    ok = Expectation("a/ok", "A ok", ">=", 50, "%").evaluate_accuracy(90, 100)
    report = build_report(profile="smoke", verdicts=[ok], tests=[], records={}, environment={},
                          started=0.0, finished=1.0, exit_status=1)
    md = write_reports(report, tmp_path)["markdown"].read_text()
    assert md.startswith("# harness report: FAILED\n")
    assert "every verdict passed but pytest exited with status 1" in md
    assert session_status(report).problems == tuple(gate_problems(report))


# --- item 13: every untrusted string escaped in report.md ----------------------------------------
HOSTILE = "x` <img src=x onerror=alert(1)> | [click](http://evil)\r\n# injected heading *b*"


def _outside_code_spans(line: str) -> str:
    """``line`` without its code spans (CommonMark: a run of n backticks up to the next run of
    exactly n; a backslash-escaped backtick outside a span opens none)."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i:i + 2])
            i += 2
            continue
        if line[i] == "`":
            n = len(line[i:]) - len(line[i:].lstrip("`"))
            j = line.find("`" * n, i + n)
            while j != -1 and (line[j + n:j + n + 1] == "`" or line[j - 1] == "`"):
                j = line.find("`" * n, j + 1)
            if j == -1:
                out.append(line[i:i + n])
                i += n
                continue
            i = j + n
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _unescaped(text: str, char: str) -> int:
    return len([m for m in re.finditer(re.escape(char), text)
                if (len(text[:m.start()]) - len(text[:m.start()].rstrip("\\"))) % 2 == 0])


def test_markdown_escapes_backticks_carriage_returns_and_html_from_logs(tmp_path):
    """Issue 10 item 13: a backtick or \\r in a log string broke out of its code span and put
    markdown and HTML into report.md and the job summary."""
    bar = Expectation(f"baseline/{HOSTILE}/accuracy", f"Title {HOSTILE}", ">=", 95.0, "%")
    verdict = bar.evaluate(90.0, {"note": f"note {HOSTILE}", "run_id": f"log-{HOSTILE}",
                                  "path": f"/tmp/{HOSTILE}.log"})
    run = RunRecord(run_id=f"log-{HOSTILE}", source="log:research", dataset="cifar10", num_classes=10,
                    model="vit", states=[StateRecord(index=0, epochs=[EpochRecord(
                        epoch=0, train_loss=1.0, train_accuracy=50.0, test_accuracy=90.0)])],
                    notes={"log_path": f"/logs/{HOSTILE}.log", "lines_total": 3,
                           "not_understood_examples": [f"line {HOSTILE}"],
                           "unfinished_last_line": f"tail {HOSTILE}"})
    report = build_report(profile="nightly", verdicts=[verdict], tests=[], records={f"case {HOSTILE}": run},
                          environment={"torch": f"2.4 {HOSTILE}"}, started=0.0, finished=1.0, exit_status=1)
    md = write_reports(report, tmp_path)["markdown"].read_text()
    assert "\r" not in md
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert headings == ["# harness report: FAILED", "## Evidence", "## Runs", "## Environment"]
    for line in md.splitlines():
        plain = _outside_code_spans(line)
        assert _unescaped(plain, "<") == plain.count("<br>"), line   # only our own line breaks
        assert _unescaped(plain, "[") == 0 and _unescaped(plain, "`") == 0, line
    # GFM splits a table row on every unescaped "|", inside code spans too
    table = [line for line in md.splitlines() if line.startswith("| ") and "baseline/" in line]
    assert len(table) == 1 and _unescaped(table[0], "|") == 6  # 5 cells
    runs = [line for line in md.splitlines() if line.startswith("| case x")]
    assert len(runs) == 1 and _unescaped(runs[0], "|") == 11  # 10 cells


# --- item 14: reports first, history row last; latest/ never mixes sessions ------------------
_PUBLISH_AND_HANG = """
import json, sys, time
from pathlib import Path
from harness.report import writer

def hang(report, folder):  # report.json and report.md are written; the page hangs
    print("writing", flush=True)
    time.sleep(120)

writer.render_html = hang
writer.publish_session(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
"""


def _session(finished: float, correct: int = 90) -> dict:
    ok = Expectation("a/ok", "A ok", ">=", 50, "%").evaluate_accuracy(correct, 100, {"run_id": "r"})
    return build_report(profile="smoke", verdicts=[ok], tests=[], records={}, environment={},
                        started=finished - 1, finished=finished, exit_status=0)


def test_a_kill_while_reports_are_written_leaves_the_last_whole_session_and_no_history_row(tmp_path):
    reports = tmp_path / "reports"
    publish_session(_session(1000.0), reports)
    first = (reports / "latest" / "report.json").read_text()
    (tmp_path / "second.json").write_text(json.dumps(_session(2000.0, 40)))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _PUBLISH_AND_HANG, str(tmp_path / "second.json"),
                             str(reports)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (reports / "latest" / "report.json").read_text() == first   # not the killed session's
    assert sorted(p.name for p in (reports / "latest").iterdir()) == ["report.html", "report.json", "report.md"]
    assert [s["id"] for s in History(reports / FILENAME).sessions()] == [1]
    left = [p for p in reports.iterdir() if p.name.startswith(".latest.")]
    assert len(left) == 1 and (left[0] / "report.json").is_file()   # the killed write's folder

    messages = []
    paths = publish_session(_session(3000.0), reports, notify=messages.append)
    assert messages == []   # the killed holder's lock died with it
    assert not [p for p in reports.iterdir() if p.name.startswith(".latest.")]   # cleaned
    assert json.loads(paths["json"].read_text())["timings"]["finished"] == 3000.0
    assert [s["id"] for s in History(reports / FILENAME).sessions()] == [1, 2]


def test_latest_holds_one_sessions_files_only(tmp_path):
    from tests.test_report_pruning import _runs
    with_plots = build_report(profile="smoke", verdicts=[], tests=[], records=_runs(), environment={},
                              started=0.0, finished=1.0)
    write_reports(with_plots, tmp_path)
    assert (tmp_path / "latest" / "plots").is_dir()
    (tmp_path / "latest" / "junit.xml").write_text("<testsuites/>")   # an older session's file
    write_reports(_session(2.0), tmp_path)
    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == ["report.html", "report.json", "report.md"]


# --- item 14: the reports folder is checked before the session --------------------------------
def test_a_reports_dir_that_is_a_file_or_unwritable_is_refused_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ReportsDirError, match=r"afile is a file, not a folder; pass a folder"):
        check_reports_dir(tmp_path / "afile")
    with pytest.raises(ReportsDirError, match=r"afile is a file, not a folder"):
        check_reports_dir(tmp_path / "afile" / "reports")
    with pytest.raises(ReportsDirError, match=r"--reports-dir /sys: cannot write there \(Permission denied\)"):
        check_reports_dir(Path("/sys"))   # sysfs: no user, root included, may create a file there
    assert check_reports_dir(tmp_path / "new" / "reports").is_dir()


@pytest.mark.parametrize("where", ["afile", "/sys"])
def test_pytest_refuses_an_unusable_reports_dir_before_running_anything(pytester, where):
    """Issue 10 item 14: a read-only or file --reports-dir gave a 70-line traceback at the end."""
    (pytester.path / "afile").write_text("x")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("--reports-dir", where, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: --reports-dir "), errors
    assert "Traceback" not in "\n".join(result.outlines + result.errlines)


def test_written_reports_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        report = build_report(profile="smoke", verdicts=[], tests=[], records={}, environment={},
                              started=0.0, finished=1.0, exit_status=0)
        paths = write_reports(report, tmp_path / "reports")
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in paths.values()} == {oct(0o640)}
    assert oct((tmp_path / "reports" / "latest").stat().st_mode & 0o777) == oct(0o750)


def test_report_json_is_strict_json_whatever_the_values(tmp_path):
    """Issue 10 item 17: a nan or inf (an observation, a diverged loss in the evidence) was
    written as NaN/Infinity, which jq and JSON.parse refuse."""
    nan = Expectation("a/nan", "A", ">=", 50, "%").evaluate(float("nan"), {"loss": float("inf")})
    report = build_report(profile="smoke", verdicts=[nan], tests=[], records={},
                          environment={"x": float("-inf")}, started=0.0, finished=1.0, exit_status=1)
    text = write_reports(report, tmp_path)["json"].read_text()

    def refuse(name):
        raise AssertionError(f"{name} in report.json")
    data = json.loads(text, parse_constant=refuse)
    assert data["verdicts"][0]["observed"] is None and data["verdicts"][0]["evidence"]["loss"] is None
    assert cli_main(["gate", str(tmp_path / "latest")]) == 1   # and it reads back as a failure


def test_markdown_raw_text_is_readable_and_cuts_evidence_between_words():
    long_note = "word " * 60
    v = Expectation("c/cut", "C cut", ">=", 95, "%").evaluate_accuracy(
        97, 100, {"path": "/data/run-1/ckpt.pth", "log": long_note})
    report = build_report(profile="smoke", verdicts=[v], tests=[], records={}, environment={},
                          started=0.0, finished=1.0)
    md = render_markdown(report)
    header = md.splitlines()[2]
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$", header), header   # no "\-" or "\+"
    assert "97.00%" in md and "\\." not in md and "\\-" not in md
    evidence = next(line for line in md.splitlines() if "evidence:" in line)
    assert "path=/data/run-1/ckpt.pth" in evidence
    assert evidence.endswith(" word word...")                 # not " word wo..."


def test_the_reports_duration_is_the_sessions_not_the_report_writings(pytester):
    """The harness session is made when a test first needs it (collection); the report's
    duration starts with pytest's session, before that."""
    pytester.makeconftest("""
        import time
        def pytest_sessionstart(session):
            session.config._sessionstart_wall = time.time()
        def pytest_sessionfinish(session):
            (session.config.rootpath / "sessionstart.txt").write_text(repr(session.config._sessionstart_wall))
    """)
    pytester.makepyfile(test_one="""
        from suites.profiles import BASELINE_BARS as HARNESS_BARS

        def test_one(harness):
            harness.check("baseline/digits/state0/accuracy", 99.0)
    """)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    timings = json.loads((pytester.path / "reports" / "latest" / "report.json").read_text())["timings"]
    assert timings["started"] <= float((pytester.path / "sessionstart.txt").read_text())
    assert timings["duration_s"] == round(timings["finished"] - timings["started"], 3)


def test_a_run_that_could_not_be_made_says_what_failed_in_the_summary_line():
    from harness.wording import brief

    why = ("--init /home/me/project/checkpoints/vit_small_cifar10_pretrained_init.pth.tar does not "
           "fit the model: the file holds 197 position tokens; 51/51 keys shape-mismatched")
    run = Expectation("baseline/digits/run", "Run of case baseline/digits (exit status)", "==", 0)
    line, = summary_lines([run.evaluate(1, {"note": why, "error": brief(why)})])
    assert line == ("FAIL  baseline/digits/run  --init vit_small_cifar10_pretrained_init.pth.tar does "
                    "not fit the model: the file holds 197...")
    assert brief("51/51 weight matrices, 3/6 heads, see ./runs/a.log") == "51/51 weight matrices, 3/6 heads, see a.log"
