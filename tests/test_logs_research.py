"""The research group's log format: the shared sample and generated logs, with CRLF, noise,
undecodable bytes and a run still writing."""
import math
import re

import pytest

from fixtures.logs import HEALTHY_RUN, SAMPLE_LOG, SEED_RUN, research_log
from harness.logs import parse_log, split_lines, to_record
from harness.logs import research


def _record(text: str | bytes):
    data = text.encode("utf-8") if isinstance(text, str) else text
    lines = split_lines(data, "<test>")
    return to_record("research", lines, research.parse(lines))


def test_sample_log_states_epochs_and_arguments():
    record = parse_log(SAMPLE_LOG)
    assert record.source == "log:research"
    assert (record.dataset, record.num_classes, record.model) == ("cifar100", 100, "vit_small")
    assert record.claims_pretrained and record.init == "init_model/vit_small_cifar100_pretrained_init.pth.tar"
    assert record.spec["recipe"] == {"epochs": 4, "lr": 0.01, "batch_size": 128,
                                     "weight_decay": 0.0001, "warmup_epochs": 0}
    assert [s.index for s in record.states] == [0, 1, 2]
    s0, s1, s2 = record.states
    assert [e.test_accuracy for e in s0.epochs] == [43.68, 55.909, 60.275, 62.4]
    assert s0.extra["validation_accuracy"][1] == [1, 55.937]   # first valid_accuracy = validation
    assert [s.best_accuracy for s in record.states] == [62.4, 60.85, 59.1]
    assert [s.extra["best_sa_logged"] for s in record.states] == [62.4, 60.85, 59.1]
    assert (s0.first_batch_loss, s0.first_batch_accuracy) == (4.6127, 0.781)
    assert s0.intra_epoch == [(0, 391, 4.6127, 0.781), (200, 391, 2.6182, 35.233)]
    assert s0.epochs[1].train_accuracy == 53.205 and s0.epochs[1].lr == 0.01
    assert s0.epochs[3].train_loss == 1.8298
    # remain weight: printed after pruning (before the header) and again after it
    assert [s.extra["remain_weight"] for s in record.states] == [100.0, 92.76, 86.0442]
    assert s2.sparsity == pytest.approx(13.9558)
    assert [s.seconds for s in record.states] == [2573.1, 3576.2, 2862.9]
    assert record.complete  # pruning_times=3 and states 0..2 all completed
    assert record.notes["lines_not_understood"] == 0
    assert record.notes["lines_total"] == 114


def test_seed_run_log():
    record = _record(research_log(SEED_RUN))
    s0 = record.state(0)
    assert (s0.first_batch_loss, s0.first_batch_accuracy) == (2.3346, 7.031)
    assert s0.intra_epoch == [(0, 352, 2.3346, 7.031), (200, 352, 2.199, 17.013)]
    assert s0.first_epoch_accuracy == 20.66
    assert s0.best_accuracy == 74.12 and len(s0.epochs) == 60
    assert record.spec["recipe"]["epochs"] == 60 and record.spec["recipe"]["lr"] == 0.01
    assert record.spec["args"]["vit_pretrained"] is True


def test_a_run_still_writing_is_partial_and_its_last_line_set_aside():
    record = _record(research_log(SEED_RUN, state1_epochs=2))
    assert not record.complete
    assert [len(s.epochs) for s in record.states] == [60, 2]
    assert record.notes["unfinished_last_line"].startswith("Epoch: [2][0/352]")
    assert record.notes["lines_not_understood"] == 0


def test_an_epoch_without_its_test_accuracy_is_left_out_and_said_so():
    text = research_log(HEALTHY_RUN)
    cut = text.index("valid_accuracy", text.index("Epoch: [3][0/352]"))
    record = _record(text[:cut] + "valid_accuracy 95.000\n")   # validation printed, test not yet
    assert [e.epoch for e in record.state(0).epochs] == [0, 1, 2]
    assert record.notes["epochs_without_test_accuracy"] == [
        "state 0 epoch 3: no test accuracy printed before the log ended"]


def test_crlf_noise_and_undecodable_bytes_read_the_same_numbers():
    clean = _record(research_log(SEED_RUN))
    lines = research_log(SEED_RUN).split("\n")
    noisy = []
    for i, line in enumerate(lines):
        noisy.append(line)
        if i % 50 == 7:
            noisy.append("/opt/torch/utils/data.py:42: UserWarning: some warning")
    data = "\r\n".join(noisy).encode("utf-8").replace(b"conv1 included", b"conv1 \xff\xfe included")
    record = _record(data)
    assert record.notes["undecodable_lines"] == 1
    # the undecodable line is still understood (its marker text survives); the warnings are not
    assert record.notes["lines_not_understood"] == sum(1 for i in range(len(lines)) if i % 50 == 7)
    assert "UserWarning" in record.notes["not_understood_examples"][0]
    assert [s.to_dict() for s in record.states] == [s.to_dict() for s in clean.states]


def test_progress_bar_carriage_returns_split_lines():
    text = "Namespace(dataset='cifar10', arch='vit_small', epochs=1)\npruning state 0\n" \
           "0.01\r 10%|#    |\r 50%|#####|\rEpoch: [0][0/10]\tLoss 2.3000 (2.3000)\tAccuracy 10.000 (10.000)\n" \
           "train_accuracy 30.0\nvalid_accuracy 40.0\nvalid_accuracy 41.0\n"
    record = _record(text)
    assert record.state(0).epochs[0].test_accuracy == 41.0
    assert record.state(0).epochs[0].lr == 0.01
    assert record.notes["lines_not_understood"] == 2


def test_no_header_no_state():
    record = _record("Epoch: [0][0/10]\tLoss 2.3 (2.3)\tAccuracy 9.0 (9.0)\nvalid_accuracy 1\nvalid_accuracy 2\n")
    assert record.states == []
    assert record.notes["lines_not_understood"] == 3


def test_namespace_is_read_without_evaluating_code():
    record = _record("Namespace(dataset='cifar10', arch=__import__('os').getcwd(), epochs=3, "
                     "decreasing_lr='91,136', nested=[1, 2])\n")
    args = record.spec["args"]
    assert args["arch"] == "__import__('os').getcwd()"   # kept as text, never called
    assert (args["epochs"], args["decreasing_lr"], args["nested"]) == (3, "91,136", [1, 2])


def test_truncated_namespace_falls_back_to_pairs():
    record = _record("Namespace(dataset='cifar100', epochs=4, lr=0.01, init='a,b.pth\n")
    assert record.spec["args"]["dataset"] == "cifar100" and record.spec["args"]["epochs"] == 4


def test_vit_pretrained_false_is_no_claim_even_with_an_init_file():
    record = _record("Namespace(dataset='cifar10', init='init_model/x.pth.tar', vit_pretrained=False)\n")
    assert not record.claims_pretrained


def test_nan_loss_is_kept_as_nan():
    record = _record("pruning state 0\nEpoch: [0][0/5]\tLoss nan (nan)\tAccuracy 10.0 (10.0)\n"
                     "train_accuracy 10\nvalid_accuracy 10\nvalid_accuracy 10\n")
    assert math.isnan(record.state(0).first_batch_loss)


def test_a_state_or_accuracy_spelled_in_non_ascii_digits_is_not_read_as_a_number():
    """int('١') == 1: a state header or accuracy in Arabic-Indic digits was read as state 1 / 9%."""
    from harness.logs.bounds import NUMBER
    from harness.logs.research import _STATE, _VALID
    assert _STATE.match("pruning state ١") is None and _STATE.match("pruning state 1")
    assert _VALID.match("valid_accuracy ٩٥.٠") is None
    assert re.fullmatch(NUMBER, "95.0") and not re.fullmatch(NUMBER, "٩٥.٠")
