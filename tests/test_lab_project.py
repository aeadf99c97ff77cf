"""tests/data/lab_project, a lab's project in none of the research group's shapes (its own BatchNorm
CNN and data factories, a training script printing fractions, a pruning script with its own file
names and log wording, one of whose states lies), judged only through the documented routes, as
its user runs them in its folder: `pytest`, `python prune.py` then `harness suites pruning
--harness-from-run=runs/prune` (the layout declared in its pyproject.toml), `harness log runs/prune
--checks`, `harness inspect`. No file of the lab is converted."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent / "data" / "lab_project"
IDS = ("lab/labnet/state0/accuracy", "lab/train_py/state0/accuracy")

pytestmark = pytest.mark.slow


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True,
                          timeout=900)


def _report(folder: Path) -> dict:
    return json.loads((folder / "lab-reports" / "latest" / "report.json").read_text())


def _val_top1(folder: Path, state: int) -> str:
    line = (folder / "runs" / "prune" / "log.txt").read_text().splitlines()[state + 1]
    return line.rsplit("=", 1)[1]


def _copy(to: Path) -> Path:
    shutil.copytree(PROJECT, to, ignore=shutil.ignore_patterns("lab-reports", "runs", "__pycache__"))
    return to


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project copied, and its first `pytest` session: (folder, result, report.json)."""
    folder = _copy(tmp_path_factory.mktemp("lab") / "lab_project")
    result = _run(folder, "-m", "pytest", "-q")
    return folder, result, _report(folder)


def test_pytest_in_the_project_judges_the_harness_trained_cnn_and_the_scripts_fractional_log(project):
    folder, result, report = project
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    verdicts = {v["id"]: v for v in report["verdicts"]}
    assert set(verdicts) == set(IDS) and all(v["passed"] for v in verdicts.values())
    printed = [float(v) for v in re.findall(r"^  \| \[ep \d{3}\] loss=[0-9.]+ val_top1=([0-9.]+) \(n=360\)$",
                                            result.stdout, re.M)]
    assert len(printed) == 4 and max(printed) <= 1           # the script printed fractions...
    assert verdicts["lab/train_py/state0/accuracy"]["observed"] == pytest.approx(100 * max(printed))
    runs = {r["case"]: r for r in report["runs"]}             # ...read as percentages
    assert runs["lab/labnet"]["model"] == "labnet:labnet"
    assert runs["lab/labnet"]["dataset"] == "labdata:digits16"
    assert runs["lab/train_py"]["source"] == "log:declared"
    assert (folder / "runs" / "trained.pth.tar").is_file() and (folder / "runs" / "init.pth.tar").is_file()


def test_the_bundled_pruning_suite_judges_the_labs_folder_by_its_declared_layout(project):
    folder = project[0]
    pruned = _run(folder, "prune.py")
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    assert (folder / "runs" / "prune" / "log.txt").read_text().splitlines()[0] == \
        "# lab imp | method=imp scope=global rate=0.3 rounds=3"
    judged = _run(folder, "-m", "harness.cli", "suites", "pruning", "--harness-from-run=runs/prune", "-q")
    assert judged.returncode == 1, judged.stdout[-3000:] + judged.stderr[-2000:]
    verdicts = {v["id"]: v for v in _report(folder)["verdicts"]}   # the project's reports folder
    lies = {i for i, v in verdicts.items() if not v["passed"]}
    assert lies == {f"pruning/imp/state3/{c}" for c in ("sparsity", "log_consistency", "nesting")}
    honest = {i.split("/", 3)[3] for i in verdicts if "/state3/" not in i}
    assert honest == {"sparsity", "log_consistency", "nesting", "trained", "rewind"}
    evidence = verdicts["pruning/imp/state2/sparsity"]["evidence"]
    assert evidence["claim_from"]["rate"] == "log line 1"
    assert evidence["claim_from"]["rewind"] == "declared in harness_run_layout / --harness-run-layout"
    assert verdicts["pruning/imp/state3/log_consistency"]["evidence"]["log_lines"] == [
        "log line 5: round 3: 34.30% of weights left, val_top1=" + _val_top1(folder, 3) + " (34.30% remaining)"]
    shown = _run(folder, "-m", "harness.cli", "log", "runs/prune", "--checks")   # the same, no pytest
    assert shown.returncode == 1, shown.stderr
    failed = sorted(line.split(":")[0] for line in shown.stdout.splitlines() if line.startswith("FAIL "))
    assert failed == [f"FAIL {i}" for i in sorted(lies)]
    assert f"from harness_run_layout in {folder.resolve() / 'pyproject.toml'}" in shown.stdout


def test_harness_inspect_tells_the_trained_checkpoint_from_its_init_without_arch(project):
    folder = project[0]
    inspected = _run(folder, "-m", "harness.cli", "inspect", "runs/init.pth.tar", "runs/trained.pth.tar",
                     "--json")
    assert inspected.returncode == 0, inspected.stderr
    files = {Path(f["path"]).name: f for f in json.loads(inspected.stdout)}
    assert (files["init.pth.tar"]["verdict"], files["trained.pth.tar"]["verdict"]) == ("random-init", "trained")
    assert "3/3 BatchNorm layers trained" in files["trained.pth.tar"]["summary"]
    assert "3/3 BatchNorm layers at init" in files["init.pth.tar"]["summary"]


def test_an_edited_dataset_factory_trains_both_runs_again(project, tmp_path):
    """tests/test_closure.py proves the keys; here the user's own edit: more noise in labdata.py."""
    folder, _, first = project
    edited = _copy(tmp_path / "edited")
    shutil.copytree(folder / "lab-reports", edited / "lab-reports")
    data = edited / "labdata.py"
    data.write_text(data.read_text().replace("NOISE = 0.05", "NOISE = 0.15"))
    result = _run(edited, "-m", "pytest", "-q")
    before = {r["case"]: r["run_id"] for r in first["runs"]}
    after = {r["case"]: r for r in _report(edited)["runs"]}
    assert set(after) == set(before), result.stdout[-3000:]
    for case, run_id in before.items():
        assert after[case]["run_id"] != run_id and not after[case]["reused"], case
