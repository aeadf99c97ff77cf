"""bench/gpu_check.sh and its parts: the init files (bench/pretraining.py), the expected outcomes
(bench/outcomes.py) and, slow, the whole script's dry run on the CPU, so the script is known to
work before a GPU hour is spent on it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import outcomes, pretraining
from harness import storage
from harness.expect import Expectation
from harness.forensics.inspection import inspect_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def test_random_init_file_is_judged_random_init_by_its_weights(tmp_path, capsys):
    path = tmp_path / "vit_small_cifar10_pretrained_init.safetensors"
    assert pretraining.main([str(path), "--model", "vit_tiny_digits", "--random", "--num-classes", "10",
                             "--in-chans", "1", "--summary", str(tmp_path / "s.json")]) == 0
    result = inspect_checkpoint(str(path))
    assert result.verdict == "random-init"
    assert json.loads((tmp_path / "s.json").read_text())["kind"] == "untrained"
    assert "wrote" in capsys.readouterr().out


def test_pretraining_needs_a_task_and_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        pretraining.parse_args([str(tmp_path / "x.safetensors"), "--model", "vit_tiny_digits"])
    assert exc.value.code == 2 and "--dataset: name the pre-training task" in capsys.readouterr().err
    assert pretraining.main([str(tmp_path / "x.safetensors"), "--model", "vit_tiny_digits",
                             "--dataset", "cifar10", "--data-root", str(tmp_path / "none")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def _verdict(vid: str, passed: bool) -> dict:
    observed = 60.0 if passed else 10.0
    return Expectation(vid, vid, ">=", 50.0, "%").evaluate(observed).to_dict()


def _session(out: Path, init: str, start_passes: bool, drop: str = "") -> None:
    folder = out / f"session_{init}"
    ids = ["baseline/digits/state0/accuracy", "pruning/refill/state3/accuracy", "pruning/rsst/state3/accuracy"]
    verdicts = [_verdict(i, True) for i in ids if i != drop]
    verdicts += [_verdict(f"baseline/digits/{s}", start_passes) for s in outcomes.START_VERDICTS]
    storage.write_json(folder / "report.json", {"verdicts": verdicts})
    (folder / "junit.xml").write_text('<testsuites><testsuite tests="9" failures="2" errors="0" '
                                      'skipped="1"/></testsuites>')


def _out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "steps.tsv").write_text("fixtures\t0\t0\t1.5\nsession_random\t1\t0,1\t90.0\n")
    _session(out, "random", start_passes=False)
    _session(out, "trained", start_passes=True)
    storage.write_json(out / "pretraining.json", {"final_test_accuracy": 84.7,
                                                  "test_accuracy_per_epoch": [40.0, 84.7]})
    (out / "gpu_tests.xml").write_text('<testsuite tests="3" failures="0" errors="0" skipped="0"/>')
    return out


def test_outcomes_hold_when_the_random_init_fails_and_the_trained_one_passes(tmp_path, capsys):
    out = _out(tmp_path)
    assert outcomes.main([str(out), "--profile", "smoke", "--require-cuda", "--min-pretrain-accuracy", "70",
                          "--wall-seconds", "300", "--budget-seconds", "480"]) == 0
    doc = json.loads((out / "outcomes.json").read_text())
    assert doc["passed"] and doc["failed"] == []
    ids = {o["id"] for o in doc["outcomes"]}
    assert {"gpu_check/random/baseline/digits/state0/pretrained_start",
            "gpu_check/trained/baseline/digits/init/pretrained", "gpu_check/step/session_random",
            "gpu_check/wall_seconds", "gpu_check/gpu_tests"} <= ids
    assert "expected outcomes hold" in capsys.readouterr().out


def test_outcomes_name_each_one_that_does_not_hold(tmp_path, capsys):
    out = _out(tmp_path)
    _session(out, "random", start_passes=True)                          # the mislabelled file slips through
    _session(out, "trained", start_passes=True, drop="pruning/rsst/state3/accuracy")   # a run cut short
    (out / "steps.tsv").write_text("pretraining\t124\t0\t240.0\t240\n")
    (out / "gpu_tests.xml").write_text('<testsuite tests="3" failures="0" errors="0" skipped="3"/>')
    assert outcomes.main([str(out), "--profile", "smoke", "--require-cuda", "--wall-seconds", "500",
                          "--budget-seconds", "480"]) == 1
    failed = set(json.loads((out / "outcomes.json").read_text())["failed"])
    assert failed == {"gpu_check/step/pretraining", "gpu_check/wall_seconds", "gpu_check/gpu_tests",
                      "gpu_check/random/baseline/digits/state0/pretrained_start",
                      "gpu_check/random/baseline/digits/init/pretrained", "gpu_check/trained/runs_complete"}
    printed = capsys.readouterr().out
    assert "timed out (killed by its time limit of 240 s: the budget left when it started)" in printed
    assert "pruning/rsst/state3/accuracy" in printed
    assert "| `gpu_check/wall_seconds` | **FAIL** |" in (out / "outcomes.md").read_text()


def test_throughput_bars_are_outcomes_and_a_variant_left_out_is_reported(tmp_path, capsys):
    out = _out(tmp_path)
    mfu = Expectation("throughput/vit_small_patch4_32/mfu", "ViT-S/4 @32 engine MFU", ">=", 30.0, "%")
    storage.write_json(out / "throughput_vit_small_patch4_32.json", {"cases": {"vit_small_patch4_32": {
        "bars": [mfu.evaluate(22.2, {"device": "NVIDIA H200"}).to_dict()],
        "variants_left_out": {"max-autotune": "~300 s estimated (compile ~240 s), 90 s left"}}}})
    assert outcomes.main([str(out), "--profile", "smoke", "--throughput-bars"]) == 1
    doc = json.loads((out / "outcomes.json").read_text())
    assert doc["failed"] == ["throughput/vit_small_patch4_32/mfu"]
    assert doc["reported"] == {"throughput/vit_small_patch4_32/max-autotune":
                               "variant left out: ~300 s estimated (compile ~240 s), 90 s left"}
    printed = capsys.readouterr().out
    assert "FAIL throughput/vit_small_patch4_32/mfu" in printed
    assert "REPORTED throughput/vit_small_patch4_32/max-autotune: variant left out" in printed


def test_a_session_without_its_report_is_an_outcome_not_a_traceback(tmp_path, capsys):
    out = _out(tmp_path)
    (out / "session_trained" / "report.json").unlink()
    assert outcomes.main([str(out), "--profile", "smoke"]) == 1
    assert "gpu_check/trained/report" in json.loads((out / "outcomes.json").read_text())["failed"]
    (out / "steps.tsv").unlink()
    assert outcomes.main([str(out), "--profile", "smoke"]) == 2
    assert "bench.outcomes: cannot read" in capsys.readouterr().err


def failing_lines(out: Path, stdout: str, stderr: str) -> str:
    """What a failed dry run shows: every FAIL line and each step that did not end as allowed,
    with the end of its log (the step's own error), then the script's stderr; never a bare tail
    that may have cut the FAIL line off."""
    shown = [line for line in stdout.splitlines() if line.startswith("FAIL ") or "not holding" in line]
    steps = out / "steps.tsv"
    for fields in (line.split("\t") for line in (steps.read_text().splitlines() if steps.is_file() else [])):
        if fields[1] not in fields[2].split(","):
            log = out / "logs" / f"{fields[0]}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else "(no log)"
            shown.append(f"--- step {fields[0]}: exit {fields[1]} (allowed {fields[2]}) after "
                         f"{fields[3]} s; the end of logs/{fields[0]}.log:\n{tail}")
    return "\n".join(shown or ["(no FAIL line and no failed step; the end of its output:)", stdout[-3000:]]) \
        + "\n--- stderr:\n" + stderr[-2000:]


def test_a_failed_check_shows_its_fail_lines_and_the_failed_steps_log(tmp_path):
    """Issue 22 item 9: a FAIL line far from the end of the output, and the step's own error,
    are both in what the assertion prints."""
    out = _out(tmp_path)
    (out / "steps.tsv").write_text("fixtures\t0\t0\t1.5\tnone\npretraining\t1\t0\t20.0\tnone\n")
    (out / "logs" / "pretraining.log").write_text("x" * 10_000 + "\nRuntimeError: CUDA out of memory\n")
    stdout = "FAIL gpu_check/step/pretraining: exit status 1\n" + "PASS something\n" * 2000
    shown = failing_lines(out, stdout, "boom")
    assert "FAIL gpu_check/step/pretraining: exit status 1" in shown
    assert "--- step pretraining: exit 1 (allowed 0)" in shown and "RuntimeError: CUDA out of memory" in shown
    assert "fixtures" not in shown and shown.endswith("boom") and len(shown) < 6000


@pytest.mark.slow
def test_dry_run_of_the_gpu_check_holds_every_outcome(tmp_path):
    """GPU_CHECK_DRY=1: every step on the CPU with tiny sizes (smoke profile for the sessions).
    No step has a time limit in the dry run, so a loaded machine makes it slow, never red; the
    subprocess's own limit only stops a hang (about 7 minutes on an idle 2-core machine)."""
    out = tmp_path / "out"
    env = dict(os.environ, GPU_CHECK_DRY="1", OUT=str(out), PYTHON=sys.executable, TMPDIR=str(tmp_path))
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=6 * 3600)
    assert done.returncode == 0, failing_lines(out, done.stdout, done.stderr)
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
    assert steps and {fields[4] for fields in steps} == {"none"}       # no time limit on any step
    doc = json.loads((out / "outcomes.json").read_text())
    assert doc["passed"] and len(doc["outcomes"]) >= 15
    random = json.loads((out / "session_random" / "report.json").read_text())
    trained = json.loads((out / "session_trained" / "report.json").read_text())
    start = "baseline/digits/state0/pretrained_start"
    assert [v["passed"] for v in random["verdicts"] if v["id"] == start] == [False]
    assert [v["passed"] for v in trained["verdicts"] if v["id"] == start] == [True]
    bench = json.loads((out / "throughput_smoke.json").read_text())
    assert set(bench["cases"]["smoke"]["variants"]) == {"default", "batch-x2"}
    assert sorted(p.name for p in (out / "kernels").iterdir()) == ["kernels_smoke_batch-x2.txt",
                                                                   "kernels_smoke_default.txt"]
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / "session_trained" / name).is_file()
    assert not list(out.rglob("*.safetensors"))          # no checkpoint is kept in $OUT
    assert not list(tmp_path.glob("gpu_check.*"))        # the work folder is removed
