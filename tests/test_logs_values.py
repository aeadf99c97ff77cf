"""Impossible accuracies (issue 10, item 12): 150%, inf, nan, 1e308 or a negative value read from a
log is refused with the line that held it, its epoch is not entered, and no verdict built on the
log can pass on it. An MLLOG ``eval_accuracy 1e308`` with ``eval_samples`` ended pytest in an
INTERNALERROR (OverflowError while counting correct samples)."""
import json
from pathlib import Path

import pytest

from fixtures.logs import HEALTHY_RUN, mllog_lines, research_log, write_timm_folder
from harness.expect import Expectation
from harness.logs import parse_log, split_lines, to_record
from harness.logs import mllog, research, timm
from harness.start import epoch_zero

ROOT = Path(__file__).resolve().parent.parent
BAR = Expectation("baseline/cifar10/state0/accuracy", "State 0 accuracy", ">=", 95.0, "%")
IMPOSSIBLE = {"150.0": "150% is outside 0-100%", "1e308": "1e+308% is outside 0-100%",
              "-3.5": "-3.5% is outside 0-100%", "inf": "inf is not a finite number",
              "nan": "nan is not a finite number"}


def _record(fmt: str, text: str):
    lines = split_lines(text.encode(), "<test>")
    return to_record(fmt, lines, {"research": research, "mllog": mllog, "timm": timm}[fmt].parse(lines))


@pytest.mark.parametrize("bad", sorted(IMPOSSIBLE))
def test_research_an_impossible_test_accuracy_is_refused_with_its_line(bad):
    record = _record("research", "Namespace(dataset='cifar10', vit_pretrained=True)\npruning state 0\n"
                     f"0.01\ntrain_accuracy 50\nvalid_accuracy 96\nvalid_accuracy {bad}\n"
                     "0.01\ntrain_accuracy 60\nvalid_accuracy 40\nvalid_accuracy 41\n")
    why = f"test accuracy {IMPOSSIBLE[bad]}"
    assert record.notes["parse_problems"] == [f"line 6: 'valid_accuracy {bad}': {why}"]
    assert record.notes["epochs_without_test_accuracy"] == [f"state 0 epoch 0: not entered (line 6: {why})"]
    assert record.notes["lines_not_understood"] == 1
    state = record.state(0)
    assert [(e.epoch, e.test_accuracy) for e in state.epochs] == [(1, 41.0)]   # still epoch 1
    assert epoch_zero(state) is None                  # nothing to judge a pretrained start on
    assert not BAR.evaluate(state.best_accuracy).passed


def test_research_impossible_training_and_batch_accuracies_refuse_their_epoch():
    text = research_log(HEALTHY_RUN, state1_epochs=0)
    text = text.replace("Accuracy 9.375 (9.375)", "Accuracy 150.000 (150.000)", 1)   # epoch 0, batch 0
    lines = text.split("\n")
    at = [i for i, line in enumerate(lines) if line.startswith("train_accuracy")][3]
    lines[at] = "train_accuracy 1e308"                                                 # epoch 3
    record = _record("research", "\n".join(lines))
    problems = record.notes["parse_problems"]
    assert len(problems) == 2
    assert problems[0].endswith("'Epoch: [0][0/352]\\tLoss 2.3412 (2.3412)\\tAccuracy 150.000 (150.000)"
                                "\\tTime 21.00': batch accuracy 150% is outside 0-100%")
    assert problems[1] == f"line {at + 1}: 'train_accuracy 1e308': training accuracy 1e+308% is outside 0-100%"
    s0 = record.state(0)
    assert [e.epoch for e in s0.epochs] == [1, 2] + list(range(4, HEALTHY_RUN.epochs))
    assert s0.first_batch_loss is None and s0.intra_epoch == []   # the refused line gives no first batch
    assert record.notes["epochs_without_test_accuracy"][0].startswith("state 0 epoch 0: not entered (line 12: ")


def test_research_only_impossible_accuracies_leave_nothing_to_judge():
    record = _record("research", "pruning state 0\ntrain_accuracy 10\nvalid_accuracy 150\nvalid_accuracy 150\n")
    assert record.state(0).best_epoch is None   # the suite fails: "no test accuracy for state 0"
    assert len(record.notes["parse_problems"]) == 2


def test_mllog_1e308_with_eval_samples_is_refused_not_an_overflow():
    record = _record("mllog", mllog_lines(
        ("eval_samples", 10000, {}), ("run_start", None, {}),
        ("eval_accuracy", 1e308, {"epoch_num": 1}), ("eval_accuracy", 0.4, {"epoch_num": 2}),
        ("eval_accuracy", 150, {"epoch_num": 3}), ("eval_accuracy", float("inf"), {"epoch_num": 4}),
        ("eval_accuracy", -0.2, {"epoch_num": 5}), ("eval_accuracy", 0.5, {"epoch_num": 6})))
    s0 = record.state(0)
    # no epoch_start/block_start: the epochs are not known, the printed epoch_num is kept
    assert [(e.epoch, e.test_accuracy, e.test_correct) for e in s0.epochs] == [(2, 40.0, 4000), (6, 50.0, 5000)]
    assert s0.extra["epochs_unknown"]
    assert [p.split(":")[0] for p in record.notes["parse_problems"]] == ["line 3", "line 5", "line 6", "line 7"]
    assert record.notes["parse_problems"][0].endswith("eval_accuracy 1e+308% is outside 0-100%")
    assert "eval_accuracy inf is not a finite number" in record.notes["parse_problems"][2]
    assert record.notes["epochs_without_test_accuracy"][0] == (
        "epoch_num 1: not entered (line 3: eval_accuracy 1e+308% is outside 0-100%)")
    assert epoch_zero(s0) is None and not BAR.evaluate(s0.best_accuracy).passed


def test_mllog_an_impossible_sample_count_is_refused():
    record = _record("mllog", mllog_lines(("eval_samples", 1e308, {}), ("eval_samples", 2.5, {}),
                                          ("eval_accuracy", 1.0, {"epoch_num": 0})))
    problems = record.notes["parse_problems"]
    assert len(problems) == 2
    assert problems[0].startswith("line 1: ") and problems[0].endswith(
        "eval_samples 1e+308 is not a whole number in 1..1,000,000,000,000")
    assert problems[1].startswith("line 2: ") and problems[1].endswith(
        "eval_samples 2.5 is not a whole number in 1..1,000,000,000,000")
    first = record.state(0).epochs[0]
    assert (first.test_accuracy, first.test_correct, first.test_n) == (100.0, None, None)


def test_timm_rows_with_impossible_accuracies_are_not_entered(tmp_path):
    folder = write_timm_folder(HEALTHY_RUN, tmp_path / "run")
    rows = (folder / "summary.csv").read_text().splitlines()
    rows[1] = "0,2.0,2.1,150.0,99.0,0.01"        # epoch 0: eval_top1 150
    rows[2] = "1,1.9,2.0,97.0,inf,0.01"          # epoch 1: eval_top5 inf
    rows[3] = "2,1.8,1.9,1e308,99.0,0.01"        # epoch 2
    rows[4] = "3,1.7,1.8,nan,99.0,0.01"          # epoch 3
    (folder / "summary.csv").write_text("\n".join(rows) + "\n")
    record = parse_log(folder)
    s0 = record.state(0)
    assert [e.epoch for e in s0.epochs] == list(range(4, HEALTHY_RUN.epochs))
    assert record.notes["parse_problems"] == [
        "line 2: '0,2.0,2.1,150.0,99.0,0.01': eval_top1 150% is outside 0-100%: epoch 0 not entered",
        "line 3: '1,1.9,2.0,97.0,inf,0.01': eval_top5 inf is not a finite number: epoch 1 not entered",
        "line 4: '2,1.8,1.9,1e308,99.0,0.01': eval_top1 1e+308% is outside 0-100%: epoch 2 not entered",
        "line 5: '3,1.7,1.8,nan,99.0,0.01': eval_top1 nan is not a finite number: epoch 3 not entered"]
    assert epoch_zero(s0) is None


@pytest.mark.slow
@pytest.mark.parametrize("log_kind", ["mllog_overflow", "research_150"])
def test_the_baseline_suite_fails_on_impossible_accuracies(pytester, log_kind):
    """The verdicts a user gets: one that used to pass (150% >= 95%) fails, and the MLLOG that
    ended pytest in an INTERNALERROR (exit 3) ends in an ordinary failure (exit 1)."""
    if log_kind == "mllog_overflow":
        log = pytester.path / "run.mllog"
        log.write_text(mllog_lines(("dataset", "cifar10", {}), ("eval_samples", 10000, {}),
                                   ("run_start", None, {}), ("eval_accuracy", 1e308, {"epoch_num": 1})))
    else:
        log = pytester.path / "run.log"
        log.write_text("Namespace(arch='vit_small', dataset='cifar10')\npruning state 0\n"
                       "0.01\ntrain_accuracy 50\nvalid_accuracy 150\nvalid_accuracy 150\n")
    reports = pytester.path / "reports"
    result = pytester.runpytest(str(ROOT / "suites" / "baseline"), "--from-log", str(log),
                                "--reports-dir", str(reports), "-q", "-p", "no:randomly")
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 1, output
    assert "INTERNALERROR" not in output and "no test accuracy for state 0" in output
    report = json.loads((reports / "latest" / "report.json").read_text())
    assert not any(v["passed"] for v in report["verdicts"])
    assert report["runs"][0]["log"]["epochs_without_test_accuracy"][0].endswith("is outside 0-100%)")
