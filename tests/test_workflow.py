"""The nightly GitHub Actions workflow: parsed, and checked for the properties the gate needs."""
import shlex
from pathlib import Path

import pytest
import yaml

from harness.report import build_report, write_reports

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"


@pytest.fixture(scope="module")
def job():
    data = yaml.safe_load(WORKFLOW.read_text())
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "schedule" in triggers and triggers["schedule"][0]["cron"]
    (name, job), = data["jobs"].items()
    return job


def _step(job, text):
    found = [s for s in job["steps"] if text in (s.get("run", "") + s.get("uses", "") + s.get("name", ""))]
    assert len(found) == 1, f"one step with {text!r} expected, got {len(found)}"
    return found[0]


def test_runs_on_a_self_hosted_gpu_runner(job):
    assert set(job["runs-on"]) == {"self-hosted", "gpu"}


def test_installs_as_the_readme_says(job):
    install = _step(job, "pip install")
    line = 'pip install -e ".[dev]"'
    assert line in install["run"] and line in (ROOT / "README.md").read_text()


def test_the_store_and_history_live_on_the_runners_disk_not_in_the_actions_cache(job):
    """Failing and cancelled nights keep their runs and history (an Actions cache saves only on
    success, and a runs store of gigabytes would evict the data root)."""
    assert not [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")]
    check = _step(job, "Check the runner's configuration")["run"]
    assert 'state="${HARNESS_STATE_DIR:-$RUNNER_TOOL_CACHE/harness}"' in check
    assert 'echo "REPORTS_DIR=$state/reports" >> "$GITHUB_ENV"' in check


def test_least_privilege_and_current_actions(job):
    data = yaml.safe_load(WORKFLOW.read_text())
    assert data["permissions"] == {"contents": "read"}
    checkout = _step(job, "actions/checkout")
    assert checkout["uses"] == "actions/checkout@v6" and checkout["with"]["persist-credentials"] is False
    assert _step(job, "actions/upload-artifact")["uses"] == "actions/upload-artifact@v7"


def test_runs_the_nightly_profile_with_junitxml_and_options_the_plugin_knows(job, pytestconfig):
    step = _step(job, "pytest suites")
    args = shlex.split(step["run"])
    assert args[args.index("--harness-profile") + 1] == "nightly"
    assert args[args.index("--harness-data-root") + 1] == "$DATA_ROOT"
    assert args[args.index("--harness-init") + 1] == "$HARNESS_INIT"
    assert args[args.index("--harness-reports-dir") + 1] == "$REPORTS_DIR"
    assert "--junitxml" in args and job["env"]["HARNESS_INIT"] == "${{ vars.HARNESS_INIT }}"
    dests = {"--junitxml": "xmlpath"}  # pytest's own option stores under another name
    for option in (a for a in args if a.startswith("--")):
        pytestconfig.getoption(dests.get(option, option[2:].replace("-", "_")))  # raises if unknown
    assert step["continue-on-error"] is True  # the gate decides, after the reports are published


def test_uploads_the_html_report_and_gates_on_the_verdicts_last(job):
    upload = _step(job, "actions/upload-artifact")
    assert upload["if"] == "always()" and "${{ env.REPORTS_DIR }}/latest/report.html" in upload["with"]["path"]
    gate = job["steps"][-1]
    assert gate["if"] == "always()" and gate["run"].startswith(".venv/bin/harness gate ")
    assert not any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in job["steps"])  # the plugin writes it


def test_the_reports_are_appended_to_the_step_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = build_report(profile="nightly", verdicts=[], tests=[], records={}, environment={},
                          started=0.0, finished=1.0, exit_status=0)
    paths = write_reports(report, tmp_path / "reports")
    text = summary.read_text()
    assert text.startswith("earlier step\n# harness report") and paths["html"].is_file()


def test_last_nights_reports_cannot_pass_tonights_gate(job, tmp_path, capsys):
    """Issue 22 item 1: a session that stopped before writing reports left last night's
    ``latest/``, and the gate passed it. The job clears ``latest/`` before the session (whatever
    stops pytest before the harness loads), the session marks it when it starts, and the marker
    is uploaded with the reports."""
    from harness.cli import main

    steps = job["steps"]
    check = _step(job, "Check the runner's configuration")
    assert 'rm -rf "$state/reports/latest"' in check["run"]
    assert steps.index(check) < steps.index(_step(job, "pytest suites"))
    assert "${{ env.REPORTS_DIR }}/latest/session.json" in _step(job, "actions/upload-artifact")["with"]["path"]
    assert main(["gate", str(tmp_path / "reports" / "latest")]) == 2    # a cleared latest/ fails
    assert "no report.json there" in capsys.readouterr().err
