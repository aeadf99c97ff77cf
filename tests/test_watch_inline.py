"""CommandSpec(..., stop_on_fail=True) inside a pytest session: the command's log is judged as it
runs, against the session's bars, and a doomed run is stopped after epoch 0 and fails its case."""
import json
from pathlib import Path

import pytest

from fixtures.checkpoints import fresh_state
from harness import storage
from harness.command import CommandSpec

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
import sys
from harness.suite import Bar, Case, CommandSpec

HARNESS_CASES = [Case("digits", CommandSpec(
    argv=(sys.executable, "-m", "fixtures.group_train", "--init", "INIT", "--epochs", "3"),
    env={"PYTHONPATH": "ROOT"}, dataset="digits", stop_on_fail=True))]
HARNESS_BARS = [Bar("baseline/digits/state0/pretrained_start", "Pretrained start on digits",
                    ">=", 50.0, "%")]


def test_start(harness, case):
    record = harness.run(case)
    harness.check("baseline/digits/state0/pretrained_start", record.state(0).epochs[0].test_accuracy)
'''


def test_stop_on_fail_is_in_the_run_key_only_when_set():
    plain = CommandSpec(argv=("python", "train.py"))
    assert "stop_on_fail" not in plain.to_dict()      # keys of stored commands unchanged
    assert CommandSpec(argv=("python", "train.py"), stop_on_fail=True).to_dict()["stop_on_fail"]
    with pytest.raises(ValueError, match="log_format 'timm' is an output folder"):
        CommandSpec(argv=("python", "train.py"), log_format="timm", stop_on_fail=True)


@pytest.mark.slow
def test_a_doomed_command_is_stopped_after_epoch_0_and_fails_its_case(pytester):
    name = "vit_tiny_digits_pretrained_init.pth.tar"
    storage.save_torch(pytester.path / name, {"state_dict": fresh_state(0), "arch": "vit_tiny_digits"})
    pytester.makepyfile(test_doomed=SUITE.replace("INIT", name).replace("ROOT", str(ROOT)))
    result = pytester.runpytest("--reports-dir", "reports", "-q", "-p", "no:randomly")
    out = "\n".join(result.outlines + result.errlines)
    assert result.ret == 1, out
    report = json.loads((pytester.path / "reports" / "latest" / "report.json").read_text())
    run = {v["id"]: v for v in report["verdicts"]}["test_doomed/digits/run"]
    note = run["evidence"]["note"]
    assert "was stopped by the harness (stop_on_fail)" in note
    assert "FAIL baseline/digits/init/pretrained" in note
    assert "FAIL baseline/digits/state0/pretrained_start" in note
    assert "stopped after epoch 0 of 3, state 0 of 1" in note
    output = sorted((pytester.path / "reports" / "runs").glob("*/output.log"))
    assert output and output[0].read_text().count("valid_accuracy") == 2   # no second epoch
