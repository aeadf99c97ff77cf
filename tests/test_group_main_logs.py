"""The research group's own script, read: the stdout of main_imp_fillback.py's main() for a Refill
and an RSST run (tests/data/group_main/README.md says how they were made). Facts read by hand
from the files: each run has 4 states of 6 epochs, each epoch prints validation then test
accuracy, every state ends with one more validation pass and '* best SA=' (the test accuracy at
the best-validation epoch), and three 'Remaining weights:' lines per state."""
from pathlib import Path

import pytest

from harness.logs import parse_log
from harness.logs.summary import record_lines
from harness.runfolder.opener import open_log

DATA = Path(__file__).parent / "data" / "group_main"
REFILL = DATA / "refill_main_digits_4states.log"
RSST = DATA / "rsst_main_digits_4states.log"

# '* best SA=' as printed (lines 94, 374, 653, 930 and 94, 393, 691, 990)
BEST_SA = {REFILL: [67.5, 80.0, 83.33333333333333, 90.0],
           RSST: [67.5, 80.83333333333333, 70.27777777777777, 80.55555555555556]}
# the validation pass after the last epoch, before '* best SA=' (RSST: after its cut)
AFTER = {REFILL: [57.778, 76.111, 85.556, 86.667], RSST: [57.778, 13.333, 10.0, 13.333]}


@pytest.mark.parametrize("path", [REFILL, RSST], ids=["refill", "rsst"])
def test_every_state_of_the_groups_output_is_read_as_printed(path):
    record = parse_log(path)
    assert record.source == "log:research" and record.complete and record.dataset == "digits"
    assert [len(s.epochs) for s in record.states] == [6, 6, 6, 6]
    assert not record.notes["epochs_without_test_accuracy"] and not record.notes["parse_problems"]
    assert record.notes["lines_not_understood"] == 0       # every line it prints is known
    # the group's own figure, recomputed from the epochs, is the one the log printed
    assert [s.best_sa for s in record.states] == pytest.approx(BEST_SA[path], abs=5e-4)  # %.3f
    assert [s.extra["best_sa_logged"] for s in record.states] == BEST_SA[path]
    assert [s.extra["final_validation"] for s in record.states] == AFTER[path]
    assert [len(s.extra["remaining_weights"]) for s in record.states] == [3, 3, 3, 3]
    assert record.notes["heads"] == {f"blocks.{i}.attn": 6 for i in range(4)}
    state2 = record_lines(record)[-2]          # `harness log` shows both figures of state 2
    shown = "83.33%" if path == REFILL else "70.28%"
    assert f"; best SA {shown} at the best-validation epoch; the log's own best {shown}" in state2


def _sparsity(path) -> list:
    return [o.verdict() for o in open_log(parse_log(path)).outcomes("sparsity")]


def test_refill_trains_each_state_at_its_claimed_sparsity():
    verdicts = _sparsity(REFILL)
    assert [v.observed for v in verdicts] == pytest.approx([0.0, 70.31, 70.31, 70.31])
    assert all(v.passed for v in verdicts)      # 0.7 of 24 heads and of the neurons, per state
    assert verdicts[1].threshold == pytest.approx(70.0)


def test_rsst_reports_the_accuracy_of_its_unpruned_model_and_the_cut_model_is_near_chance():
    """RSST trains each state unpruned and cuts after its last epoch: the log's own lines say its
    best SA (80.83%) is of a model with 100% of its weights, and that the model it ends with
    validates at 13.33% (10 classes)."""
    verdicts = _sparsity(RSST)
    assert [v.passed for v in verdicts] == [True, False, False, False]
    state1 = verdicts[1]
    assert state1.observed == 0.0 and state1.threshold == pytest.approx(70.0)
    assert state1.evidence["log_line"] == "log line 300: Remaining weights: 100.00%"
    assert state1.evidence["validation_after_cut"] == 13.333
    assert state1.evidence["validation_last_epoch"] == 76.667
    note = state1.evidence["note"]
    assert "best SA (80.83333333333333) report on" in note and "not the cut one" in note
    assert "reads 13.33% against 76.67% at epoch 5, the last in the log" in note


def test_an_rsst_state_that_starts_at_its_claimed_sparsity_gets_no_such_note(tmp_path):
    """The note is the log's evidence, not the method's name: the same output with state 1's
    start report at 30.00% remaining passes, and says nothing of an unpruned model."""
    lines = RSST.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[299] == "Remaining weights: 100.00%\n"          # line 300, read by hand
    lines[299] = "Remaining weights: 30.00%\n"
    edited = tmp_path / "rsst.log"
    edited.write_text("".join(lines), encoding="utf-8")
    state1 = [o.verdict() for o in open_log(parse_log(edited)).outcomes("sparsity")][1]
    assert state1.passed and state1.observed == pytest.approx(70.0)
    assert "not the cut one" not in state1.evidence["note"]
    assert "validation_after_cut" not in state1.evidence
