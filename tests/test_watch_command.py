"""`harness watch -- python train.py`: a real training script printing the research group's
log (fixtures.group_train) judged while it trains. Its random init saved under a
``_pretrained_init`` name is caught by forensics before the first step and by the pretrained-start
floor after epoch 0, and the run is stopped there, its whole process group gone; the same script
from the trained smoke model runs to its end and passes."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.checkpoints import fresh_state
from harness import storage
from harness.cli import main
from harness.process import group_members

from forensics_support import trained_digits

ROOT = Path(__file__).resolve().parents[1]


def _watch(tmp_path: Path, init: str, *extra: str) -> tuple:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "harness.cli", "watch", "--reports-dir", "reports", *extra, "--",
            sys.executable, "-m", "fixtures.group_train", "--init", init, "--epochs", "3"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    report = tmp_path / "reports" / "latest" / "report.json"
    return done, json.loads(report.read_text()) if report.is_file() else {}


@pytest.mark.slow
def test_a_random_init_named_pretrained_is_stopped_after_epoch_0(tmp_path):
    name = "vit_tiny_digits_pretrained_init.pth.tar"
    storage.save_torch(tmp_path / name, {"state_dict": fresh_state(0), "arch": "vit_tiny_digits"})
    done, report = _watch(tmp_path, name)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    verdicts = {v["id"]: v for v in report["verdicts"]}
    init = verdicts["baseline/digits/init/pretrained"]
    assert not init["passed"] and init["evidence"]["verdict"] == "random-init"
    start = verdicts["baseline/digits/state0/pretrained_start"]
    assert not start["passed"] and start["threshold"] == 50.0 and start["observed"] < 50.0
    # said as decided: the init before the first batch line, the start right after epoch 0
    assert out.index("FAIL baseline/digits/init/pretrained") < out.index("Epoch: [0][0/")
    assert out.index("FAIL baseline/digits/state0/pretrained_start") > out.index("valid_accuracy")
    assert out.count("valid_accuracy") == 2 and "State 0 completed!" not in out   # no 2nd epoch
    assert "stopped after epoch 0 of 3, state 0 of 1 (2 of 3 planned epochs not run)" in out
    assert report["options"]["stopped"].startswith("stopped after epoch 0 of 3")
    assert "this verdict stopped the run" in init["evidence"]["run_stopped"]
    assert report["exit_status"] == 1 and (tmp_path / "reports" / "history.sqlite").is_file()
    assert main(["gate", str(tmp_path / "reports" / "latest")]) == 1     # the report is the gate's
    pgid = int(re.search(r"process group (\d+)", out).group(1))
    assert group_members(pgid) == []                       # nothing of the run is left
    stored = (tmp_path / "reports" / "watch" / "output.log").read_text()
    assert stored.startswith("Namespace(init='vit_tiny_digits_pretrained_init.pth.tar'")


@pytest.mark.slow
def test_the_same_script_from_a_trained_backbone_runs_to_its_end_and_passes(tmp_path):
    name = "digits_backbone_pretrained_init.pth.tar"
    storage.save_torch(tmp_path / name, {"state_dict": trained_digits(), "arch": "vit_tiny_digits"})
    done, report = _watch(tmp_path, name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("valid_accuracy") == 6 and "State 0 completed!" in done.stdout
    verdicts = {v["id"]: v for v in report["verdicts"]}
    assert set(verdicts) == {"baseline/digits/init/pretrained", "baseline/digits/state0/pretrained_start",
                             "baseline/digits/state0/accuracy", "watch/digits/state0/loss_finite",
                             "watch/digits/state0/loss_growth", "watch/digits/state0/epochs"}
    assert all(v["passed"] for v in verdicts.values())
    assert verdicts["baseline/digits/init/pretrained"]["evidence"]["verdict"] == "trained"
    assert "watch: passed (6/6 verdicts passed, profile smoke)" in done.stdout
    assert report["options"]["ended"] == "exited" and report["exit_status"] == 0
    assert main(["gate", str(tmp_path / "reports" / "latest")]) == 0
