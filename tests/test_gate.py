"""The CI gate: exit 1 exactly when a verdict failed (or nothing was judged), 0 otherwise; a
report.json that breaks the schema is refused in one line naming the field."""
import json

import pytest

from harness import storage
from harness.escape import dumps
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


# --- issue 10 item 12: `harness gate` and `harness report` validate what they read -----------
def _write(tmp_path, text: str) -> str:
    path = tmp_path / "report.json"
    path.write_text(text)
    return str(path)


def _passing(tmp_path) -> dict:
    return json.loads(storage.write_text(tmp_path / "ok.json", json.dumps(
        _report([BAR.evaluate(96.0)], 0))).read_text())


@pytest.mark.parametrize("command", ["gate", "report"])
def test_a_verdict_passed_as_the_string_false_is_refused_naming_the_field(tmp_path, capsys, command):
    """Issue 10 item 12: the gate passed a report.json whose verdict said "passed": "false"."""
    report = _passing(tmp_path)
    report["verdicts"][0]["passed"] = "false"
    assert main([command, _write(tmp_path, json.dumps(report))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.endswith("not a harness report: verdicts[0].passed must be true or false, got 'false'\n")


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("verdicts"), "verdicts is missing"),
    (lambda r: r.update(verdicts={"a": 1}), "verdicts must be a list, got {'a': 1}"),
    (lambda r: r["verdicts"][0].update(observed="96"),
     "verdicts[0].observed must be a finite number or null, got '96'"),
    (lambda r: r["verdicts"][0].update(threshold=[95]), "verdicts[0].threshold must be a finite number or null"),
    (lambda r: r["verdicts"][0].update(op="=>"), "verdicts[0].op must be one of >=, <=, ==, within, got '=>'"),
    (lambda r: r["verdicts"][0].pop("id"), "verdicts[0].id is missing"),
    (lambda r: r.update(schema="something/2"), "schema must be 'harness.report/1', got 'something/2'"),
    (lambda r: r.update(exit_status="0"), "exit_status must be an integer or null, got '0'"),
    (lambda r: r.update(plots={"x": "/etc/passwd.png"}), "plots['x'] must be a path plots/NAME.png"),
    (lambda r: r.update(runs=[{"case": "c"}]), "runs[0].run_id is missing"),
    (lambda r: r.update(history={"verdicts": {"x": {"previous": 1}}}),
     "history.verdicts['x'].previous must be an object, got 1"),
])
def test_a_malformed_report_is_one_line_naming_the_field(tmp_path, capsys, mutate, message):
    report = _passing(tmp_path)
    mutate(report)
    for command in ("gate", "report"):
        assert main([command, _write(tmp_path, json.dumps(report))]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("text, message", [
    ('{"schema": "harness.report/1", "verdicts": [', "not JSON (Expecting value at line 1, column 45)"),
    ('{"observed": NaN}', "not strict JSON: NaN is not a JSON number"),
    ("[1, 2]", "the report must be an object, got [1, 2]"),
    ("", "not JSON (Expecting value at line 1, column 1)"),
])
def test_a_truncated_or_non_strict_report_is_refused(tmp_path, capsys, text, message):
    assert main(["gate", _write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_gate_fails_a_verdict_on_an_infinite_observation(tmp_path, capsys):
    """An accuracy of inf read from a log must not pass "State 0 >= 95%"."""
    report = _report([BAR.evaluate(float("inf"))], 0)
    storage.write_text(tmp_path / "report.json", dumps(report))
    assert main(["gate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "FAIL State 0 accuracy on cifar10: observed nan vs expected >= 95.00% (gap -); "
        "observed value inf is not a finite number", "gate: FAILED (0/1 verdicts passed, profile nightly)"]
