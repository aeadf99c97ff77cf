import json

from harness.cli import main as cli_main
from harness.expect import Expectation
from harness.report import build_report, render_markdown, write_reports
from harness.report.terminal import summary_lines


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
