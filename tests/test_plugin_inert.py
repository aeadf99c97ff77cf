"""The plugin is inert unless used, and its options live beside other plugins' options."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

UNRELATED = '''
import sys

def test_another_projects_test():
    assert "torch" not in sys.modules, "the harness plugin imported torch"
'''


def _pytest(folder, *args, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def test_an_unrelated_session_imports_no_torch_and_writes_nothing(tmp_path, monkeypatch):
    (tmp_path / "test_other.py").write_text(UNRELATED)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _pytest(tmp_path, "-q", "-p", "no:benchmark")   # pytest-benchmark makes .benchmarks/
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == before
    assert not summary.exists() and "harness" not in result.stdout


CONFTEST = '''
def pytest_addoption(parser):
    parser.addoption("--profile", action="store_true", help="another plugin's --profile")
'''

BOTH = '''
def test_the_other_plugins_option(request):
    assert request.config.getoption("profile") is True

def test_the_harness_option(harness):
    from harness.expect import Expectation
    harness.record(Expectation("probe/profile", "profile is smoke", "==", 1).evaluate(
        float(harness.profile.name == "smoke")))      # a session that judges nothing fails
'''


def test_a_plugin_owning_profile_and_the_harness_both_work(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_both.py").write_text(BOTH)
    result = _pytest(tmp_path, "-q", "--profile", "--harness-profile", "smoke",
                     "--harness-reports-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    help_text = _pytest(tmp_path, "--help").stdout
    assert "--harness-profile" in help_text and "another plugin's --profile" in help_text
    assert "--expect=ID>=VALUE" in help_text          # a short name nobody else owns is offered


def test_ini_settings_are_defaults_the_command_line_overrides_and_the_header_shows(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nharness_profile = smoke\n"
                                         "harness_reports_dir = from_ini\n")
    (tmp_path / "test_probe.py").write_text(
        "def test_probe(harness_session):\n"
        "    print('reports=%s' % harness_session.options.reports_dir.name)\n")
    result = _pytest(tmp_path, "-s")
    assert "harness: profile smoke" in result.stdout and "reports=from_ini" in result.stdout
    assert (tmp_path / "from_ini" / "latest" / "report.json").is_file()
    again = _pytest(tmp_path, "-s", "--harness-reports-dir", "cli")
    assert "reports=cli" in again.stdout and (tmp_path / "cli" / "latest").is_dir()
