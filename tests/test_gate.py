"""The CI gate: exit 1 exactly when a verdict failed (or nothing was judged), 0 otherwise."""
import pytest

from harness import storage
from harness.cli import main
from harness.expect import Expectation
from harness.gate import gate_problems
from harness.report import build_report

BAR = Expectation("baseline/cifar10/state0/accuracy", "State 0 accuracy on cifar10", ">=", 95.0, "%")


def _report(verdicts, exit_status):
    return build_report(profile="nightly", verdicts=verdicts, tests=[], records={}, environment={},
                        started=0.0, finished=1.0, exit_status=exit_status)


def test_passes_when_every_verdict_passed():
    assert gate_problems(_report([BAR.evaluate_accuracy(9640, 10000)], 0)) == []


def test_fails_on_a_failing_verdict_naming_it():
    problems = gate_problems(_report([BAR.evaluate_accuracy(7412, 10000), BAR.evaluate(96.0)], 1))
    assert problems == ["FAIL State 0 accuracy on cifar10: observed 74.12% vs expected >= 95.00% "
                        "(gap -20.88 pp)"]


def test_a_regression_is_named_as_one():
    report = _report([BAR.evaluate(94.0)], 1)
    report["verdicts"][0]["regression"] = True
    assert gate_problems(report)[0].startswith("REGRESSION State 0 accuracy")


@pytest.mark.parametrize("verdicts, status, reason", [
    ([], 0, "no verdict was recorded"),
    ([], 4, "no verdict was recorded"),
    ([BAR.evaluate(96.0)], 1, "every verdict passed but pytest exited with status 1"),
])
def test_a_session_that_judged_nothing_or_crashed_fails(verdicts, status, reason):
    problems = gate_problems(_report(verdicts, status))
    assert len(problems) == 1 and reason in problems[0]


def test_cli_exit_codes(tmp_path, capsys):
    storage.write_json(tmp_path / "ok" / "report.json", _report([BAR.evaluate(96.0)], 0))
    storage.write_json(tmp_path / "bad" / "report.json", _report([BAR.evaluate(94.0)], 1))
    assert main(["gate", str(tmp_path / "ok")]) == 0
    assert "gate: passed (1/1 verdicts passed, profile nightly)" in capsys.readouterr().out
    assert main(["gate", str(tmp_path / "bad" / "report.json")]) == 1
    assert "gate: FAILED (0/1 verdicts passed" in capsys.readouterr().out
    assert main(["gate", str(tmp_path / "missing")]) == 2
    assert "no report.json there" in capsys.readouterr().err
