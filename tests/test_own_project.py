"""examples/own_project, a user's project outside the harness package, run as its user runs it:
`pytest` in its folder. Its own ViT class trained by the harness, its own script run as a command,
a real MLPerf log judged against a bar from its pyproject.toml: all in one report.md under the
project's own verdict ids; a second session reuses both runs."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IDS = ("own/vit_digits/state0/accuracy", "script/digits/state0/accuracy",
       "script/digits/state1/accuracy", "imagenet/resnet50/top1")

pytestmark = pytest.mark.slow


def _pytest(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=folder, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user") / "own_project"
    shutil.copytree(ROOT / "examples" / "own_project", folder,
                    ignore=shutil.ignore_patterns("reports", "runs", "__pycache__"))
    return folder, _pytest(folder)


def test_the_users_project_is_judged_under_its_own_ids(project):
    folder, result = project
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads((folder / "reports" / "latest" / "report.json").read_text())
    verdicts = {v["id"]: v for v in report["verdicts"]}
    assert set(verdicts) == set(IDS) and all(v["passed"] for v in verdicts.values())
    assert verdicts["imagenet/resnet50/top1"]["observed"] == pytest.approx(76.02)
    assert verdicts["imagenet/resnet50/top1"]["evidence"]["n"] == 50000
    markdown = (folder / "reports" / "latest" / "report.md").read_text()
    assert all(f"`{i}`" in markdown for i in IDS)
    runs = {r["case"]: r for r in report["runs"]}
    assert runs["own/vit_digits"]["model"] == "own_vit.model:vit_digits"
    assert sorted(runs["script/digits"]["spec"]["command"]["argv"][1:2]) == ["train.py"]
    assert "  | * best SA = " in result.stdout           # the script's output, live and escaped
    assert (folder / "runs" / "out" / "1checkpoint.pth.tar").is_file()


def test_a_second_session_reuses_the_trained_and_the_commanded_run(project):
    folder, _ = project
    again = _pytest(folder)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "  | " not in again.stdout                      # the script did not run again
    runs = {r["case"]: r for r in json.loads(
        (folder / "reports" / "latest" / "report.json").read_text())["runs"]}
    assert runs["own/vit_digits"]["reused"] and runs["script/digits"]["reused"]


def test_an_edited_script_is_run_again(project, tmp_path):
    folder, _ = project
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = copy / "train.py"
    script.write_text(script.read_text() + "\n# edited\n")
    result = _pytest(copy)
    assert result.returncode == 0 and "  | * best SA = " in result.stdout


def test_a_failing_command_is_a_failing_verdict_with_its_last_lines(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n")
    (tmp_path / "boom.py").write_text("print('loading data')\nraise SystemExit('no GPU found')\n")
    (tmp_path / "test_cmd.py").write_text(
        "import sys\nfrom harness.suite import Case, CommandSpec\n"
        "HARNESS_CASES = [Case('boom', CommandSpec(argv=(sys.executable, 'boom.py')))]\n"
        "def test_run(harness, case):\n    harness.run(case)\n")
    result = _pytest(tmp_path)
    assert result.returncode == 1
    assert "boom/run" in result.stdout or "Run of case boom" in result.stdout
    assert "exited with status 1" in result.stdout and "no GPU found" in (
        tmp_path / "reports" / "latest" / "report.md").read_text()
    assert not list((tmp_path / "reports" / "runs").glob("*/record.json"))   # nothing stored
