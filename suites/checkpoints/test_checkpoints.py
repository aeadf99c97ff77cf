"""Checkpoint suite: every file that claims to be pretrained (by name, by metadata, or as the
--init of a run) must be `trained` or `finetune-init`, judged from its weights alone.

`pytest suites/checkpoints --harness-checkpoints PATH` (repeat the option for more files or
folders) judges your files, one test per file. Without it, it judges the demonstration set of
suites/checkpoints/demo.py: the mislabeled files
there are expected failures (xfail, the verdict in the reason), showing what a catch looks like.
"""
import pytest

from .demo import demo_cases, expected, sentinel_path
from harness.expect import Expectation
from harness.forensics.inspection import claim_verdict, inspect_checkpoint

SUITE = "checkpoints"
DEMONSTRATION = demo_cases()


def test_checkpoint(harness, checkpoint, request):
    if checkpoint.demo is None:
        result = inspect_checkpoint(checkpoint.path, claim=checkpoint.claim)
        harness.record(claim_verdict(result, f"checkpoints/{checkpoint.id}"))
        return
    path = request.getfixturevalue("demo_files")[checkpoint.demo]
    result = inspect_checkpoint(path)
    demo = expected(checkpoint.demo)
    harness.record(_caught(result, demo))
    assert not sentinel_path(path.parent).exists(), "the code-running pickle ran its code"
    if demo.mislabeled:
        verdict = claim_verdict(result, f"checkpoints/demo/{demo.file}")
        pytest.xfail(f"mislabeled demonstration file, caught: {verdict.line()}")
    harness.record(claim_verdict(result, f"checkpoints/demo/{demo.file}"))


def _caught(result, demo):
    """The harness's own check on a demonstration file: it found the verdict the file was built
    to have."""
    bar = Expectation(f"checkpoints/demo/{demo.file}/verdict",
                      f"{demo.file} ({demo.description}) judged {demo.verdict}", "==", 1.0)
    return bar.evaluate(float(result.verdict == demo.verdict),
                        {"note": f"found {result.line()}", "expected": demo.verdict,
                         "verdict": result.verdict, "seconds": round(result.seconds, 4)})
