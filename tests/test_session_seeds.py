"""HarnessSession: multi-seed runs judged on their mean (real tiny training on digits)."""
import statistics

import pytest
import torch

from harness.options import PROFILES, Options, Resolved
from harness.session import HarnessSession
from harness.suite import Bar, Case
from harness.spec import Recipe, RunSpec

VID = "baseline/digits-tiny/state0/accuracy"
TINY = RunSpec(model="vit_tiny_digits", dataset="digits", seed=5,
               recipe=Recipe(epochs=1, batch_size=128, lr=1e-3, augment="none", eval_batch_size=512))


CASE = Case("digits-tiny", TINY, suite="baseline")


def _session(tmp_path, bar: Bar) -> HarnessSession:
    options = Options(profile="smoke", device="cpu", reports_dir=tmp_path, no_progress=True)
    hs = HarnessSession(options, Resolved(PROFILES["smoke"], torch.device("cpu")))
    hs.book.add([bar], "test")
    return hs



def test_three_seeds_train_three_runs_and_the_verdict_reports_mean_and_spread(tmp_path, one_thread):
    bar = Bar(VID, "State 0 accuracy on digits (tiny)", ">=", 10.0, "%", seeds=3)
    hs = _session(tmp_path, bar)
    case = CASE
    recorder = hs.recorder("test::seeds")
    records = recorder.run_seeds(case, bar.seeds)
    assert [r.spec["seed"] for r in records] == [5, 6, 7]
    assert len({r.run_id for r in records}) == 3 and not any(r.notes["reused"] for r in records)
    best = [r.state(0).best_epoch for r in records]
    verdict = recorder.check_accuracy_seeds(VID, [(b.test_correct, b.test_n) for b in best])
    accs = [b.test_accuracy for b in best]
    assert verdict.observed == pytest.approx(statistics.mean(accs))
    assert verdict.evidence["per_seed"] == [round(a, 4) for a in accs]
    assert f"mean of 3 seeds, std {statistics.stdev(accs):.2f} pp" in verdict.line()
    again = _session(tmp_path, bar).run_seeds(case, 3)  # a new session reuses the stored runs
    assert [r.run_id for r in again] == [r.run_id for r in records] and all(r.notes["reused"] for r in again)
