"""The plugin end to end: real `pytest suites/baseline` sessions on the smoke profile."""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # pytest subprocesses, real training

ROOT = Path(__file__).resolve().parent.parent
ACC_ID = "baseline/digits/state0/accuracy"


def _pytest(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-progress", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One real smoke session (trains State 0 once); later sessions reuse its stored run."""
    reports = tmp_path_factory.mktemp("reports")
    junit = reports / "junit.xml"
    result = _pytest("suites/baseline", "--reports-dir", str(reports), f"--junitxml={junit}")
    return reports, junit, result


def _report(reports):
    return json.loads((reports / "latest" / "report.json").read_text())


def test_smoke_session_passes_and_writes_reports(smoke):
    reports, junit, result = smoke
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(reports)
    verdict = next(v for v in report["verdicts"] if v["id"] == ACC_ID)
    assert verdict["passed"] and verdict["op"] == ">=" and verdict["threshold"] == 95.0
    assert verdict["unit"] == "%" and verdict["gap"] == pytest.approx(verdict["observed"] - 95.0)
    ev = verdict["evidence"]
    assert ev["n"] == 360 and ev["wilson95"][0] <= verdict["observed"] <= ev["wilson95"][1]
    assert ev["seed"] == 0 and ev["run_id"] == report["runs"][0]["run_id"]
    assert report["environment"]["torch"] and report["profile"] == "smoke"
    assert report["runs"][0]["environment"]["git_commit"]
    assert f"`{ACC_ID}`" in (reports / "latest" / "report.md").read_text()
    assert f"PASS  {ACC_ID}" in result.stdout
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    assert json.loads(props[f"verdict:{ACC_ID}"])["observed"] == verdict["observed"]


def test_second_session_reuses_the_stored_run(smoke):
    reports, _, first = smoke
    result = _pytest("suites/baseline", "--reports-dir", str(reports))
    assert result.returncode == 0, result.stdout + result.stderr
    run = _report(reports)["runs"][0]
    assert run["reused"] is True


def test_raised_bar_fails_with_one_line_and_negative_gap(smoke):
    reports, _, _ = smoke
    result = _pytest("suites/baseline", "--reports-dir", str(reports), "--expect", f"{ACC_ID}>=99.99")
    assert result.returncode == 1
    assert "State 0 accuracy on digits: observed" in result.stdout
    assert "vs expected >= 99.99% (gap -" in result.stdout
    verdict = next(v for v in _report(reports)["verdicts"] if v["id"] == ACC_ID)
    assert not verdict["passed"] and verdict["gap"] < 0 and verdict["threshold"] == 99.99
    md = (reports / "latest" / "report.md").read_text()
    assert f"| `{ACC_ID}` |" in md and "**FAIL" in md and "| -" in md


@pytest.mark.parametrize("args, message", [
    (["--profile", "nightly"], "--harness-profile nightly needs a CUDA GPU"),
    (["--expect", "baseline/digits/state0/accuracy>>3"], "expected the form ID>=VALUE"),
    (["--expect", "no/such/id>=3"], "no verdict id 'no/such/id'"),
])
def test_usage_errors_stop_with_one_clear_line(tmp_path, args, message):
    result = _pytest("suites/baseline", "--reports-dir", str(tmp_path), *args)
    assert result.returncode == 4
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr


def test_every_expectation_in_a_test_is_reported_before_it_fails(pytester):
    pytester.makepyfile(test_two="""
        from suites.profiles import BASELINE_BARS as HARNESS_BARS

        def test_two(harness):
            harness.check("baseline/digits/state0/accuracy", 10.0)
            harness.check("baseline/digits/state0/pretrained_start", 20.0)
            harness.check("baseline/digits/state0/pretrained_start", 60.0)
    """)
    result = pytester.runpytest("--reports-dir", str(pytester.path / "r"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*State 0 accuracy on digits: observed 10.00% vs expected >= 95.00% (gap -85.00 pp)*",
        "*Pretrained start on digits (test accuracy after epoch 0): observed 20.00% vs expected >= 50.00% "
        "(gap -30.00 pp)*"])
    report = json.loads((pytester.path / "r" / "latest" / "report.json").read_text())
    assert report["counts"]["verdicts"] == 3 and report["counts"]["failed"] == 2


def test_pretrained_start_passes_for_a_trained_init_and_fails_for_a_random_one(smoke, tmp_path):
    """The trained State 0 checkpoint learns at once; its architecture's random init does not."""
    import torch
    from safetensors.torch import save_file

    from harness.models import create_model

    reports, _, _ = smoke
    trained = next((reports / "runs").glob("*/state0.safetensors"))
    good = _pytest("suites/baseline", "--reports-dir", str(tmp_path / "good"), "--init", str(trained))
    assert good.returncode == 0, good.stdout + good.stderr
    verdict = next(v for v in _report(tmp_path / "good")["verdicts"]
                   if v["id"] == "baseline/digits/state0/pretrained_start")
    assert verdict["passed"] and verdict["observed"] >= 50
    assert verdict["evidence"]["init_audit"]["fraction_supplied"] == 1.0

    torch.manual_seed(123)
    random_init = tmp_path / "vit_digits_pretrained_init.safetensors"
    save_file({k: v.contiguous() for k, v in create_model("vit_tiny_digits", 10, 1).state_dict().items()},
              str(random_init))
    bad = _pytest("suites/baseline", "--reports-dir", str(tmp_path / "bad"), "--init", str(random_init))
    assert bad.returncode == 1
    assert "Pretrained start on digits (test accuracy after epoch 0): observed" in bad.stdout
    verdict = next(v for v in _report(tmp_path / "bad")["verdicts"]
                   if v["id"] == "baseline/digits/state0/pretrained_start")
    assert not verdict["passed"] and verdict["gap"] < 0
    assert abs(verdict["evidence"]["first_batch_loss"] - verdict["evidence"]["ln_num_classes"]) < 0.3


def _context_probe(pytester) -> None:
    pytester.makepyfile(test_probe="""
        def test_probe(harness_session):
            print("compile=%s" % harness_session.context.compile)
    """)


def test_no_compile_option_reaches_the_run_context(pytester):
    _context_probe(pytester)
    result = pytester.runpytest("--profile", "smoke", "--no-compile", "-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*compile=False*"])


def test_compile_is_the_default(pytester):
    _context_probe(pytester)
    result = pytester.runpytest("--profile", "smoke", "-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*compile=True*"])


def test_an_init_that_does_not_fit_the_profiles_model_is_one_line_and_still_judged(tmp_path):
    """The seed's scenario on CPU: a timm ViT-S/16 file as --init of the smoke profile."""
    import timm
    import torch

    path = tmp_path / "vit_small_cifar10_pretrained_init.pth.tar"
    torch.manual_seed(0)
    torch.save({"state_dict": timm.create_model("vit_small_patch16_224").state_dict()}, path)
    result = _pytest("suites/baseline", "--reports-dir", str(tmp_path / "r"), "--init", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    # pytest's own "short test summary" lines quote the failure cut to the terminal's width, so a
    # wide terminal (CI's) shows more of it there; the harness's own lines are what is counted.
    ours = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("FAILED "))
    assert ours.count("does not fit the model: the file holds 197 position tokens") == 1
    assert ours.count("does not fit the model") == 3     # in full, the repeat, the summary
    assert ours.count("harness inspect") == 1             # in full once, with what to run
    assert "the run failed (the reason in full under test_state0_accuracy[digits]): --init" in result.stdout
    summary = next(line for line in result.stdout.splitlines() if line.startswith("FAIL  baseline/digits/run"))
    assert "does not fit the model" in summary and "== 0" not in summary and len(summary) < 150
    verdicts = {v["id"]: v for v in _report(tmp_path / "r")["verdicts"]}
    init = verdicts["baseline/digits/init/pretrained"]             # the init verdict is recorded
    assert not init["passed"] and init["evidence"]["verdict"] == "random-init"
    assert not verdicts["baseline/digits/run"]["passed"]
