"""--from-log end to end: the baseline suite judges a parsed log with the profile bars of the
log's dataset, on this CPU machine, and writes the same report; user mistakes are one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.logs import HEALTHY_RUN, SEED_RUN, write_all
from harness.cli import main
from harness.cases import log_cases
from harness.options import OptionError, Options, resolve
from harness.session import HarnessSession
from suites.profiles import BASELINE_CASES, PRUNING_CASES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("logs"))


def _suite(pytester: pytest.Pytester, *args: str) -> tuple[int, str, dict]:
    """Run the real baseline suite in this process (the plugin as pytest loads it); returns the
    exit status, the output and report.json."""
    reports = pytester.path / "reports"
    result = pytester.runpytest(str(ROOT / "suites" / "baseline"), "--reports-dir", str(reports),
                                "-q", "-p", "no:randomly", *args)
    path = reports / "latest" / "report.json"
    output = "\n".join(result.outlines + result.errlines)
    return int(result.ret), output, json.loads(path.read_text()) if path.is_file() else {}


def _by_id(report: dict) -> dict:
    return {v["id"]: v for v in report["verdicts"]}


@pytest.mark.parametrize("fmt", ["research", "timm", "mllog", "imagenet-example"])
def test_the_seeds_run_fails_with_the_gap_and_the_random_start(pytester, logs, fmt, capsys):
    ret, output, report = _suite(pytester, "--from-log", str(logs[(SEED_RUN.name, fmt)]))
    assert ret == 1, output
    verdicts = _by_id(report)
    acc = verdicts["baseline/cifar10/state0/accuracy"]
    assert (acc["observed"], acc["threshold"], round(acc["gap"], 2), acc["passed"]) == (74.12, 95.0, -20.88, False)
    assert "recipe too short" in acc["evidence"]["note"]          # the cause beside the symptom
    start = verdicts["baseline/cifar10/state0/pretrained_start"]
    assert (start["observed"], start["threshold"], start["passed"]) == (20.66, 50.0, False)
    assert start["evidence"]["note"].startswith("claims a pretrained init but learns like a random one: "
                                                "20.66% after epoch 0 (floor 50%)")
    if fmt == "timm":   # from timm's console log, which prints 3 significant digits
        assert start["evidence"]["first_batch_loss"] == 2.33
        assert "first-batch loss 2.33 = ln 10 + 1%; running loss in epoch 0: 2.33 at step 0/352" \
            in start["evidence"]["note"]
    else:
        assert start["evidence"]["first_batch_loss"] == 2.3346
        assert "first-batch loss 2.3346 = ln 10 + 1%" in start["evidence"]["note"]
    recipe = verdicts["baseline/cifar10/state0/recipe"]
    assert (recipe["observed"], recipe["threshold"], recipe["passed"]) == (60, 200, False)
    assert report["profile"] == "nightly" and report["runs"][0]["source"] == f"log:{fmt}"
    if fmt == "mllog":  # the log gives the test set size: a Wilson interval, not a bare percentage
        assert acc["evidence"]["n"] == 10000 and acc["evidence"]["correct"] == 7412
    else:
        assert acc["evidence"]["n"] is None and "no sample count" in acc["evidence"]["interval"]
    markdown = (pytester.path / "reports" / "latest" / "report.md").read_text()
    assert "-20.88 pp<br>recipe too short" in markdown
    assert f"log:{fmt} `{logs[(SEED_RUN.name, fmt)]}" in markdown
    capsys.readouterr()
    assert main(["report", str(pytester.path / "reports" / "latest")]) == 0   # rendered again
    assert capsys.readouterr().out == markdown


@pytest.mark.parametrize("fmt", ["research", "timm", "mllog", "imagenet-example"])
def test_a_healthy_pretrained_run_passes_every_verdict(pytester, logs, fmt):
    ret, output, report = _suite(pytester, "--from-log", str(logs[(HEALTHY_RUN.name, fmt)]))
    assert ret == 0, output
    verdicts = _by_id(report)
    assert set(verdicts) == {"baseline/cifar10/state0/accuracy", "baseline/cifar10/state0/pretrained_start"}
    assert all(v["passed"] for v in verdicts.values())
    assert verdicts["baseline/cifar10/state0/pretrained_start"]["observed"] == 94.21
    # no recipe verdict for a pretrained start; the claimed init file is not on this machine
    assert report["counts"]["tests"] == {"passed": 2, "skipped": 2}


def test_a_missing_log_is_a_one_line_usage_error(pytester):
    ret, output, report = _suite(pytester, "--from-log", str(pytester.path / "nope.log"))
    assert ret == 4 and report == {}
    assert "--harness-from-log" in output and "nope.log: no such file or folder" in output
    assert "Traceback" not in output


def test_a_log_cut_before_its_first_test_accuracy_fails_saying_so(pytester):
    log = pytester.path / "early.log"
    log.write_text("Namespace(arch='vit_small', dataset='cifar10', epochs=60, vit_pretrained=True)\n"
                   "pruning state 0\n0.01\nEpoch: [0][0/352]\tLoss 2.3346 (2.3346)\tAccuracy 7.031 (7.031)\n")
    ret, output, report = _suite(pytester, "--from-log", str(log))
    assert ret == 1 and report["verdicts"] == []
    assert "log:research run log-" in output and "no test accuracy for state 0 (1 states, complete=False)" in output
    assert report["runs"][0]["log"]["epochs_without_test_accuracy"] == [
        "state 0 epoch 0: no test accuracy printed before the log ended"]


@pytest.mark.slow
def test_the_command_a_user_types_exits_non_zero_on_the_seeds_log(tmp_path, logs):
    """One real subprocess: `pytest suites/baseline --from-log run.log` from the repository."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/baseline", "--from-log",
                           str(logs[(SEED_RUN.name, "research")]), "--reports-dir", str(tmp_path), "-q"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  baseline/cifar10/state0/accuracy" in proc.stdout
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert report["options"]["from_log"] == str(logs[(SEED_RUN.name, "research")])


# --- resolve(): the edge, without a subprocess ----------------------------------------------
def test_judging_a_log_needs_no_cuda_data_root_or_init_file(logs):
    options = Options(from_log=logs[(SEED_RUN.name, "research")])
    resolved = resolve(options, cuda_available=False)
    assert resolved.device.type == "cpu"
    (case,) = log_cases(BASELINE_CASES, resolved.log_record, "x.log", "baseline")
    assert case.id == "baseline/cifar10" and case.spec.init == SEED_RUN.init
    (pruning,) = log_cases(PRUNING_CASES, resolved.log_record, "x.log", "pruning")
    assert pruning.id == "pruning/rsst"         # the log's pruning run, judged on what it reports
    session = HarnessSession(options, resolved)
    assert session.run(case) is resolved.log_record  # nothing trained


def test_dataset_and_init_options_fill_in_what_the_log_lacks(tmp_path, logs):
    folder = logs[(SEED_RUN.name, "timm")]
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "summary.csv").write_bytes((folder / "summary.csv").read_bytes())
    with pytest.raises(OptionError, match="the log names no dataset; pass --harness-dataset"):
        resolve(Options(from_log=bare))
    resolved = resolve(Options(from_log=bare, dataset="CIFAR-100", init="some/claimed.pth"))
    record = resolved.log_record
    assert (record.dataset, record.num_classes, record.claims_pretrained) == ("cifar100", 100, True)
    assert record.notes["pretrained_claim_from"] == "--harness-init"
    assert [c.id for c in log_cases(BASELINE_CASES, record, "x", "baseline")] == ["baseline/cifar100"]


def test_a_log_without_a_declared_bar_fails_naming_the_id_and_how_to_declare_it(pytester, logs):
    ret, output, report = _suite(pytester, "--from-log", str(logs[(SEED_RUN.name, "mllog")]),
                                 "--dataset", "imagenet")
    assert ret == 1
    assert ("no bar 'baseline/imagenet/state0/accuracy' in profile smoke; declare it in "
            "HARNESS_BARS or harness_bars") in output
    assert "Traceback" not in output


def test_a_bar_from_the_ini_file_judges_a_log_of_any_dataset(pytester, logs):
    ini = pytester.makeini("[pytest]\nharness_bars =\n    baseline/imagenet/state0/accuracy >= 70 % -- top-1\n")
    ret, output, report = _suite(pytester, "--from-log", str(logs[(SEED_RUN.name, "mllog")]),
                                 "--dataset", "imagenet", "-c", str(ini))
    verdict = _by_id(report)["baseline/imagenet/state0/accuracy"]
    assert verdict["passed"] and verdict["observed"] == 74.12 and verdict["threshold"] == 70


def test_profile_and_expect_mistakes_name_the_option(pytester, logs):
    path = logs[(SEED_RUN.name, "mllog")]
    with pytest.raises(OptionError, match="--harness-from-log-format 'csv' is unknown"):
        resolve(Options(from_log=path, from_log_format="csv"))
    ret, output, report = _suite(pytester, "--from-log", str(path), "--profile", "smoke")
    assert ret == 1 and "no bar 'baseline/cifar10/state0/accuracy' in profile smoke" in output
    ret, output, report = _suite(pytester, "--from-log", str(path),
                                 "--expect", "baseline/cifar10/state0/accuracy>=70")
    assert _by_id(report)["baseline/cifar10/state0/accuracy"]["threshold"] == 70


def test_a_log_yielding_no_state_says_why_and_the_two_ways_out(pytester):
    """Lines the research format half-knows (batch lines, but no state header and no
    valid_accuracy): the failure quotes what was not understood, escaped, the formats tried
    and how to go on."""
    log = pytester.path / "other.log"
    log.write_text("Epoch: [0][0/391]\tLoss 2.3346 (2.3346)\tAccuracy 9.375 (9.375)\n"
                   "=> saving checkpoint \x1b[2Jckpt.pth\n"
                   "Epoch: [0][100/391]\tLoss 2.1 (2.2)\tAccuracy 19.5 (14.0)\n"
                   "val acc 20.66\n")
    ret, output, report = _suite(pytester, "--from-log", str(log), "--harness-dataset", "cifar10")
    assert ret == 1 and report["verdicts"] == []
    assert "no test accuracy for state 0 (0 states, complete=False); nothing to judge; read as the " \
           "research format (detected: research 2 marker lines, imagenet-example 0 marker lines" in output
    assert "0 of 4 lines understood" in output
    assert "not understood: line 1: Epoch: [0][0/391]\tLoss 2.3346" in output
    assert "line 2: => saving checkpoint \\x1b[2Jckpt.pth" in output and "\x1b[2J" not in output
    assert f"`harness log {log}`" in output and "harness_log_patterns" in output
