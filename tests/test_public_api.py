"""The public surface: `from harness import Case, Bar, ...` without torch at `import harness`,
`python -m harness` and `harness --version`, `-p no:harness`, and the pytest hook
`pytest_harness_update_json` a conftest.py implements to add to report.json."""
import json
import subprocess
import sys

import pytest

import harness
import harness.suite
from harness.cli import main

AUTHORING = ["Bar", "Case", "CheckpointFile", "CommandSpec", "PruneSpec", "Recipe", "RunSpec"]


def test_the_authoring_names_come_from_harness_itself():
    from harness import Bar, Case, CommandSpec, PruneSpec, Recipe, RunSpec  # noqa: F401
    from harness.command import CommandSpec as command_spec
    from harness.record import RunRecord
    from harness.spec import RunSpec as run_spec

    assert Case is harness.suite.Case and Bar is harness.suite.Bar
    assert RunSpec is run_spec and CommandSpec is command_spec and harness.RunRecord is RunRecord
    assert set(AUTHORING) <= set(harness.__all__) and set(AUTHORING) <= set(dir(harness))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'BarBook'"):
        harness.BarBook


def test_suite_all_is_the_authoring_api_not_the_session_machinery():
    assert sorted(harness.suite.__all__) == sorted(AUTHORING)
    for machinery in ("BarBook", "parse_bar", "cases_for", "UnknownBar", "OPS"):
        assert machinery not in harness.suite.__all__


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {harness.__version__}"


@pytest.mark.slow
def test_import_harness_imports_no_torch_until_a_public_name_is_used():
    probe = ("import sys, harness\n"
             "before = 'torch' in sys.modules\n"
             "from harness import Case, RunSpec\n"
             "print(before, 'torch' in sys.modules, Case.__module__, RunSpec.__module__)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "harness.suite", "harness.spec"]


@pytest.mark.slow
def test_python_m_harness_is_the_harness_command():
    version = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True,
                             text=True, timeout=300)
    assert (version.returncode, version.stdout.strip()) == (0, f"harness {harness.__version__}")
    bare = subprocess.run([sys.executable, "-m", "harness"], capture_output=True, text=True, timeout=300)
    assert bare.returncode == 2 and "usage: harness" in bare.stdout and "inspect" in bare.stdout


JUDGED = '''
from harness import Bar

HARNESS_BARS = [Bar("mine/x", "X of mine", ">=", 1.0)]

def test_x(harness):
    harness.check("mine/x", 2.0)
'''

ADDS_A_FIELD = '''
def pytest_harness_update_json(config, report):
    report["lab"] = {"verdicts_seen": len(report["verdicts"]), "rootdir": config.rootpath.name}
'''

BREAKS_THE_REPORT = '''
def pytest_harness_update_json(config, report):
    del report["verdicts"]
'''


def test_a_conftest_adds_a_field_to_report_json(pytester):
    pytester.makeconftest(ADDS_A_FIELD)
    pytester.makepyfile(test_mine=JUDGED)
    result = pytester.runpytest("--harness-reports-dir", "r", "-q")
    assert result.ret == 0, result.stdout.str()
    report = json.loads((pytester.path / "r" / "latest" / "report.json").read_text())
    assert report["lab"] == {"verdicts_seen": 1, "rootdir": pytester.path.name}
    assert [v["id"] for v in report["verdicts"]] == ["mine/x"]


def test_a_hook_that_breaks_the_report_ends_the_session_in_one_line_and_writes_nothing(pytester):
    pytester.makeconftest(BREAKS_THE_REPORT)
    pytester.makepyfile(test_mine=JUDGED)
    result = pytester.runpytest("--harness-reports-dir", "r", "-q")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["harness: ERROR: a pytest_harness_update_json hook left the report "
                                 "invalid (verdicts is missing); no report was written*"])
    assert "Traceback" not in result.stdout.str()
    latest = pytester.path / "r" / "latest"     # holds the session's start marker only
    assert not (latest / "report.json").exists() and (latest / "session.json").is_file()


def test_p_no_harness_turns_the_plugin_off(pytester):
    pytester.makepyfile(test_mine=JUDGED)
    result = pytester.runpytest("-p", "no:harness", "--harness-reports-dir", "r")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --harness-reports-dir*"])
    plain = pytester.runpytest("-p", "no:harness", "-q")
    plain.stdout.fnmatch_lines(["*fixture 'harness' not found*"])
    assert not (pytester.path / "r").exists()


OBSERVES = '''
def pytest_harness_verdicts(item, verdicts):
    with open("seen.txt", "a") as fh:
        for v in verdicts:
            fh.write(f"{item.name} {v.id} {v.observed} {v.passed}\\n")
'''

TWO = '''
from harness import Bar

HARNESS_BARS = [Bar("mine/x", "X of mine", ">=", 1.0), Bar("mine/y", "Y of mine", "<=", 1.0)]

def test_x(harness):
    harness.check("mine/x", 2.0)

def test_y(harness):
    harness.check("mine/y", 3.0)

def test_plain():
    pass
'''


def test_a_conftest_observes_each_tests_verdicts_failing_ones_included(pytester):
    pytester.makeconftest(OBSERVES)
    pytester.makepyfile(test_mine=TWO)
    result = pytester.runpytest("--harness-reports-dir", "r", "-q", "-p", "no:randomly")
    assert result.ret == 1
    assert (pytester.path / "seen.txt").read_text().splitlines() == [
        "test_x mine/x 2.0 True", "test_y mine/y 3.0 False"]
