"""DDP under torchrun (gloo, two CPU processes): the same RunSpec reaches the same accuracy as
one process, is stored under the same key, and is reused by a single-process session."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.distributed import DistributedError, ShardedBatches
from harness.record import RunRecord

ROOT = Path(__file__).resolve().parent.parent
TINY = {"model": "vit_tiny_digits", "dataset": "digits", "seed": 0,
        "recipe": {"epochs": 6, "batch_size": 32, "lr": 0.002, "augment": "none",
                   "eval_batch_size": 512, "warmup_epochs": 0}}



def _record(reports: Path) -> RunRecord:
    (path,) = (reports / "runs").glob("*/record.json")
    return RunRecord.from_dict(json.loads(path.read_text()))


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_share_its_key(tmp_path, one_thread, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(TINY))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main(["run", "--spec", str(spec), "--reports-dir", str(single), "--device", "cpu",
                 "--no-progress"]) == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "harness.cli", "run", "--spec", str(spec), "--reports-dir", str(ddp), "--device", "cpu",
         "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _record(single), _record(ddp)
    assert two.run_id == one.run_id and two.notes["world_size"] == 2
    a, b = one.state(0), two.state(0)
    assert a.final_accuracy > 50  # it learned something worth comparing
    assert abs(b.final_accuracy - a.final_accuracy) <= 0.5
    assert b.epochs[0].train_loss != a.epochs[0].train_loss  # rank 0 trained on its half only
    assert "world size 2; reused False" in result.stdout
    capsys.readouterr()
    assert main(["run", "--spec", str(spec), "--reports-dir", str(ddp), "--device", "cpu"]) == 0
    assert "world size 2; reused True" in capsys.readouterr().out  # one process reuses the DDP run


def test_a_batch_the_world_cannot_split_is_named():
    class Batches:
        batch_size, device = 30, torch.device("cpu")
    with pytest.raises(DistributedError, match="Recipe.batch_size 30 must be divisible by the world size 4"):
        ShardedBatches(Batches(), 0, 4)


def test_cli_names_an_unknown_case(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    suite = "suites/baseline/test_baseline.py"
    assert main(["run", "--case", f"{suite}::nope", "--profile", "smoke", "--device", "cpu"]) == 2
    assert (f"--case '{suite}::nope': {suite} declares no engine case 'nope' for profile smoke; "
            f"known: digits") in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "--harness-device 'tpu'"),
    (["--init", "/no/such.pth"], "--harness-init '/no/such.pth': no such file"),
    (["--device", "cpu", "--data-root", "/no/such/dir"], "is not a directory"),
])
def test_run_spec_gets_the_checks_a_case_gets(tmp_path, capsys, args, message):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dict(TINY, dataset="cifar10")))
    assert main(["run", "--spec", str(spec), "--reports-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_run_spec_names_a_dataset_without_its_data_root(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dict(TINY, dataset="cifar10")))
    assert main(["run", "--spec", str(spec), "--reports-dir", str(tmp_path), "--device", "cpu"]) == 2
    assert "dataset cifar10 needs --harness-data-root DIR" in capsys.readouterr().err
