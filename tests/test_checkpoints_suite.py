"""suites/checkpoints pointed at a random init named pretrained fails in one line with the
verdict and its evidence; a trained file passes. Runs the real suite in a subprocess."""
from pathlib import Path

import torch

from fixtures.checkpoints import fresh_state

import pytest

pytestmark = pytest.mark.slow   # pytest subprocesses, real training

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    """The subprocess imports this checkout's harness (and fixtures/), wherever pytest runs."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_random_init_named_pretrained_fails_with_verdict_and_evidence(pytester, tmp_path):
    path = tmp_path / "vit_small_cifar10_pretrained_init.pth.tar"
    torch.save({"state_dict": fresh_state(0)}, path)
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "checkpoints"), "--reports-dir", str(tmp_path / "reports"),
        "-p", "no:cacheprovider", "--checkpoints", str(path))
    result.assert_outcomes(failed=1)
    lines = [line for line in result.outlines if "claims" not in line and "random-init:" in line
             and "backbone groups trained" in line]
    assert lines, result.stdout.str()
    line = lines[0]
    assert "(named pretrained)" in line and "observed 0.00% vs expected >= 100.00%" in line
    assert "indistinguishable from init" in line and "MP edge" in line
    report = (tmp_path / "reports" / "latest" / "report.json").read_text()
    assert "random-init" in report


def test_usage_error_for_missing_checkpoint(pytester, tmp_path):
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "checkpoints"), "--reports-dir", str(tmp_path / "r"),
        "--checkpoints", str(tmp_path / "missing.pth"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--harness-checkpoints: no such file or folder" in result.stderr.str()


def test_one_path_per_option_so_a_suite_path_after_it_stays_a_suite(pytester, tmp_path):
    """`--checkpoints FILE suites/checkpoints` judges FILE only (the suite path is not swallowed
    as a second checkpoint), and the demonstration set is not built."""
    path = tmp_path / "trained_pretrained.pth"
    torch.save({"state_dict": fresh_state(0)}, path)
    result = pytester.runpytest_subprocess(
        "--checkpoints", str(path), str(ROOT / "suites" / "checkpoints"), "-p", "no:cacheprovider",
        "--reports-dir", str(tmp_path / "r"), "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    collected = [line for line in result.outlines if "::test_checkpoint[" in line]
    assert collected == [f"{ROOT}/suites/checkpoints/test_checkpoints.py::test_checkpoint[{path}]"] \
        or [c.split("::", 1)[1] for c in collected] == [f"test_checkpoint[{path}]"]


def test_checkpoints_option_is_refused_where_no_test_judges_checkpoints(pytester, tmp_path):
    path = tmp_path / "a.pth"
    torch.save({"state_dict": fresh_state(0)}, path)
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "baseline"), "--checkpoints", str(path), "-p", "no:cacheprovider",
        "--reports-dir", str(tmp_path / "r"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--harness-checkpoints: no collected test judges checkpoint files" in result.stderr.str()
    assert not (tmp_path / "r" / "runs").exists()          # nothing trained
