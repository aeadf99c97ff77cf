"""MLPerf :::MLLOG lines: events to epochs, fractions to percent, sample counts kept."""
import json

from fixtures.logs import HEALTHY_RUN, SEED_RUN, mllog
from harness.logs import split_lines, to_record
from harness.logs import mllog as parser


def _record(text: str):
    lines = split_lines(text.encode("utf-8"), "<test>")
    return to_record("mllog", lines, parser.parse(lines))


def _line(key, value, **meta):
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "event_type": "POINT_IN_TIME",
                                     "metadata": meta})


def test_seed_run_mllog():
    record = _record(mllog(SEED_RUN))
    assert (record.dataset, record.model, record.num_classes) == ("cifar10", "vit_small", 10)
    assert record.claims_pretrained and record.init == SEED_RUN.init and record.complete
    s0 = record.state(0)
    assert s0.extra["epoch_num_of_epoch_0"] == 1            # MLPerf numbers epochs from 1
    assert [e.epoch for e in s0.epochs] == list(range(60))
    first = s0.epochs[0]
    assert (first.test_accuracy, first.test_correct, first.test_n) == (20.66, 2066, 10000)
    assert s0.best_accuracy == 74.12
    assert (s0.first_batch_loss, s0.first_batch_accuracy) == (2.3346, 7.031)
    assert s0.intra_epoch == [(0, 352, 2.3346, 7.031), (200, 352, 2.199, 17.013)]
    assert record.spec["recipe"] == {"epochs": 60, "lr": 0.01, "batch_size": 128}
    assert record.notes["lines_not_understood"] == 0


def test_prefix_text_noise_and_a_run_not_stopped():
    text = "\n".join(["[1,0]<stdout>:" + _line("dataset", "cifar100"), "some noise",
                      _line("eval_accuracy", 0.4, epoch_num=0), ":::MLLOG {not json",
                      _line("eval_accuracy", 55.5, epoch_num=1)]) + "\n"
    record = _record(text)
    assert record.dataset == "cifar100" and not record.complete
    assert [e.test_accuracy for e in record.state(0).epochs] == [40.0, 55.5]  # > 1 read as percent
    assert record.state(0).epochs[0].test_n is None                           # no eval_samples
    assert record.notes["lines_not_understood"] == 2


def test_no_events_no_state():
    assert _record(_line("submission_benchmark", "x") + "\nhello\n").states == []


def test_healthy_run_counts():
    s0 = _record(mllog(HEALTHY_RUN)).state(0)
    assert (s0.epochs[0].test_correct, s0.best_accuracy) == (9421, 98.12)
