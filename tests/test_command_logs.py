"""A lab's own script run as a command (tests/data/lab/train_fractions.py, a real subprocess that
prints '[ep 002] loss=0.5000 val_top1=0.8712 (n=600)'): its log is read with the project's
declared patterns, a log that cannot be read is stored and fails its case (never a pass), and it
is read again, not run again, once the format is declared."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.command import CommandSpec, get_or_run_command
from harness.logs.declared import LogPatterns
from harness.options import PROFILES, Options, Resolved
from harness.runs import RunContext
from harness.session import HarnessSession, RunFailed
from harness.suite import Case

SCRIPT = Path(__file__).parent / "data" / "lab" / "train_fractions.py"
PATTERNS = [r"epoch: ^\[ep (\d{1,6})\]", r"test_accuracy: val_top1=([0-9.]{1,20})",
            r"loss: loss=([0-9.]{1,20})", "arguments: ^args: ", "accuracy_scale: fraction"]


def _lab(tmp_path: Path) -> tuple:
    shutil.copy(SCRIPT, tmp_path / "train.py")
    return tmp_path, CommandSpec(argv=(sys.executable, "train.py", "4"), label="the lab's train.py")


def _context(tmp_path: Path, patterns=None) -> RunContext:
    return RunContext(device=torch.device("cpu"), reports_dir=tmp_path / "reports",
                      progress=False, log_patterns=patterns)


def _runs(folder: Path) -> int:
    return len((folder / "ran.txt").read_text().splitlines())


def test_a_commands_log_is_read_with_the_declared_patterns(tmp_path):
    folder, spec = _lab(tmp_path)
    record = get_or_run_command(spec, _context(tmp_path, LogPatterns.from_lines(PATTERNS)), folder)
    state = record.state(0)
    assert record.source == "log:declared" and "log_unread" not in record.notes
    assert [e.test_accuracy for e in state.epochs] == pytest.approx([50.12, 79.30, 87.12, 86.50])
    assert state.best_accuracy == pytest.approx(87.12) and state.epochs[2].train_loss == 0.5
    assert record.notes["accuracy_scale"].startswith("fraction: declared (accuracy_scale = fraction)")
    assert state.extra["accuracy_scale"] == "fraction"
    assert (record.dataset, record.model, record.spec["command"]["argv"][1]) == ("cifar10", "resnet20", "train.py")


def test_an_unread_log_is_stored_then_read_again_not_run_again_once_declared(tmp_path):
    folder, spec = _lab(tmp_path)
    unread = get_or_run_command(spec, _context(tmp_path), folder)
    assert "cannot tell its format" in unread.notes["log_unread"] and unread.states == []
    assert (tmp_path / "reports" / "runs" / unread.run_id / "record.json").is_file()
    assert unread.notes["last_output_lines"][-1].startswith("[ep 003]")
    again = get_or_run_command(spec, _context(tmp_path), folder)          # stored: not run again
    assert again.notes["reused"] and _runs(folder) == 1
    patterns = LogPatterns.from_lines(PATTERNS)
    read = get_or_run_command(spec, _context(tmp_path, patterns), folder)  # declared: read again
    assert _runs(folder) == 1 and read.notes["reused"] and "log_unread" not in read.notes
    assert read.run_id == unread.run_id and read.state(0).best_accuracy == pytest.approx(87.12)
    assert read.notes["command_seconds"] == unread.notes["command_seconds"]
    stored = get_or_run_command(spec, _context(tmp_path, patterns), folder)
    assert stored.notes["log_read_with"] == read.notes["log_read_with"] and _runs(folder) == 1


def test_a_log_the_patterns_read_no_evaluation_from_is_not_read(tmp_path):
    folder, spec = _lab(tmp_path)
    patterns = LogPatterns.from_lines([r"epoch: ^\[ep (\d{1,6})\]", r"test_accuracy: acc@1=([0-9.]{1,20})"])
    record = get_or_run_command(spec, _context(tmp_path, patterns), folder)
    assert record.notes["log_unread"].endswith("no evaluation read as the declared format "
                                               "(4 of 5 lines understood)")


def test_a_command_whose_log_is_not_read_fails_its_case_and_says_why(tmp_path):
    """It was a CommandFailed with exit status 0, judged by the bar 'exit status == 0': a pass."""
    folder, spec = _lab(tmp_path)
    options = Options(profile="smoke", device="cpu", reports_dir=tmp_path / "reports", no_progress=True)
    hs = HarnessSession(options, Resolved(PROFILES["smoke"], torch.device("cpu")), root=folder)
    recorder = hs.recorder("test::lab")
    case = Case("lab", spec, suite="own")
    with pytest.raises(RunFailed):
        recorder.run(case)
    (verdict,) = recorder.verdicts
    assert verdict.id == "own/lab/log" and not verdict.passed and verdict.observed == 0
    note = verdict.evidence["note"]
    assert note.startswith("the command ran (exit status 0) but its log was not read: ")
    assert "cannot tell its format" in note and "harness_log_patterns" in note
    assert f"`harness log {tmp_path / 'reports' / 'runs'}" in note
    assert "own/lab" in hs.records and hs.records["own/lab"].notes["log_unread"]


@pytest.mark.slow
def test_the_lab_project_fails_then_passes_once_its_pyproject_declares_the_format(tmp_path):
    """The whole route a user takes: pytest in the project fails the case naming what to do;
    the patterns in pyproject.toml make the next session pass without running the script
    again, and `harness log` in the project reads the log with the same patterns."""
    folder, _ = _lab(tmp_path)
    (folder / "test_lab.py").write_text(
        "import sys\nfrom harness.suite import Bar, Case, CommandSpec\nSUITE = 'lab'\n"
        "HARNESS_CASES = [Case('cifar10', CommandSpec(argv=(sys.executable, 'train.py', '4')))]\n"
        "HARNESS_BARS = [Bar('lab/cifar10/top1', 'top-1 of train.py', '>=', 85.0, '%')]\n"
        "def test_top1(harness, case):\n"
        "    harness.check_epoch('lab/cifar10/top1', harness.run(case).state(0).best_epoch)\n")
    ini = "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n"
    (folder / "pyproject.toml").write_text(ini)
    first = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=folder, capture_output=True,
                           text=True, timeout=600)
    markdown = (folder / "reports" / "latest" / "report.md").read_text()
    assert first.returncode == 1 and "lab/cifar10/log" in markdown and _runs(folder) == 1
    assert "| `lab/cifar10/log` | 0 | >= 1 |" in markdown and "**pass**" not in markdown
    assert "its log was not read" in markdown and "harness_log_patterns" in markdown
    listed = "".join(f"    '{p}',\n" for p in PATTERNS)      # TOML literal strings
    (folder / "pyproject.toml").write_text(ini + f"harness_log_patterns = [\n{listed}]\n")
    second = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=folder, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:]
    assert _runs(folder) == 1                      # read again, not run again
    markdown = (folder / "reports" / "latest" / "report.md").read_text()
    assert "accuracy scale: fraction: declared" in markdown and "| `lab/cifar10/top1` | 87" in markdown
    log = next((folder / "reports" / "runs").glob("*/output.log"))
    shown = subprocess.run([sys.executable, "-m", "harness.cli", "log", str(log)], cwd=folder,
                           capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert f"format: declared in harness_log_patterns in {folder.resolve() / 'pyproject.toml'}" in shown.stdout
    assert "resnet20 on cifar10 (10 classes)" in shown.stdout and "best 87.12%" in shown.stdout


def test_a_log_file_the_command_writes_is_read_again_from_the_stores_copy(tmp_path):
    folder, _ = _lab(tmp_path)
    writes_log = ("import subprocess, sys\nout = subprocess.run([sys.executable, 'train.py', '4'], "
                  "capture_output=True, text=True, check=True).stdout\n"
                  "open('train.log', 'w').write(out)\n")
    spec = CommandSpec(argv=(sys.executable, "-c", writes_log), log="train.log")
    unread = get_or_run_command(spec, _context(tmp_path), folder)
    assert unread.notes["log_unread"].startswith(str(tmp_path / "reports" / "runs" / unread.run_id / "command.log"))
    (folder / "train.log").write_text("overwritten by another run\n")
    read = get_or_run_command(spec, _context(tmp_path, LogPatterns.from_lines(PATTERNS)), folder)
    assert _runs(folder) == 1 and read.state(0).best_accuracy == pytest.approx(87.12)


def test_an_output_cut_at_its_cap_is_not_judged_as_the_whole_log(tmp_path, monkeypatch):
    """output.log keeps the head of the output (the cap made small here: 2 of the 4 epochs); the
    head read as the log would judge a run whose later epochs were never seen. It is refused
    when run and when read again with the declared patterns, and the case fails saying why."""
    import harness.command

    monkeypatch.setattr(harness.command, "MAX_OUTPUT_BYTES", 170)
    folder, spec = _lab(tmp_path)
    patterns = LogPatterns.from_lines(PATTERNS)
    record = get_or_run_command(spec, _context(tmp_path), folder)
    cut = "output.log keeps the first 170 bytes of the 254 bytes the command printed"
    assert record.notes["output_cut"] == cut and record.states == []
    assert record.notes["log_unread"].endswith(f"not read as the log: {cut}; write the training log "
                                               f"to a file and name it in CommandSpec.log")
    output = Path(record.notes["output_log"]).read_bytes()
    assert output.startswith(b"args: ") and output.endswith(f"\n[harness: {cut}]\n".encode())
    assert len(output) == 170 + len(f"\n[harness: {cut}]\n")
    again = get_or_run_command(spec, _context(tmp_path, patterns), folder)   # read again: refused
    assert _runs(folder) == 1 and again.states == [] and again.notes["log_unread"] == record.notes["log_unread"]
    options = Options(profile="smoke", device="cpu", reports_dir=tmp_path / "reports", no_progress=True)
    hs = HarnessSession(options, Resolved(PROFILES["smoke"], torch.device("cpu")), root=folder)
    recorder = hs.recorder("test::lab")
    with pytest.raises(RunFailed):
        recorder.run(Case("lab", spec, suite="own"))
    (verdict,) = recorder.verdicts
    assert not verdict.passed and verdict.evidence["note"] == (
        f"the command ran (exit status 0) but its log was not read: {record.notes['log_unread']}")
