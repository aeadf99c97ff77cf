"""The PyTorch ImageNet example's log family (``Epoch: [e][i/n] ... Prec@1``, `` * Prec@1 X``,
``best SA: X``) read as a built-in format: every line understood, the seed's numbers judged."""
from pathlib import Path

from fixtures.logs import HEALTHY_RUN, SEED_RUN, imagenet_log, research_log
from harness.logs import detect, parse_log

SAMPLE = Path(__file__).parent / "data" / "logs" / "imagenet_example_seed.log"

# the newer example (Acc@1, padded batch counters, losses in e-notation), behind a logging
# prefix, with a learning-rate line per epoch and a validation and a test pass per epoch
NEWER = "\n".join([
    "2024-03-01 10:00:00,123 - INFO - Namespace(arch='resnet18', dataset='cifar100', epochs=2, "
    "lr=0.1, pretrained=False)",
    'lr: 0.1',
    "Epoch: [0][  0/391]\t"
    "Time  9.585 ( 9.585)\t"
    "Data  7.404 ( 7.404)\t"
    "Loss 4.6052e+00 (4.6052e+00)\t"
    "Acc@1   0.78 (  0.78)\t"
    "Acc@5   4.69 (  4.69)",
    "Epoch: [0][390/391]\t"
    "Time  0.101 ( 0.125)\t"
    "Data  0.001 ( 0.020)\t"
    "Loss 3.9000e+00 (4.2000e+00)\t"
    "Acc@1   9.38 (  6.10)\t"
    "Acc@5  30.47 ( 22.00)",
    "Test: [ 0/79]\t"
    "Time  0.500 ( 0.500)\t"
    "Loss 3.8000e+00 (3.8000e+00)\t"
    "Acc@1  10.16 ( 10.16)\t"
    "Acc@5  31.25 ( 31.25)",
    ' *   Acc@1 11.020 Acc@5 33.100',
    ' *   Acc@1 10.540 Acc@5 32.800',
    'lr: 0.1',
    "Epoch: [1][  0/391]\t"
    "Time  0.101 ( 0.101)\t"
    "Data  0.001 ( 0.001)\t"
    "Loss 3.5000e+00 (3.5000e+00)\t"
    "Acc@1  14.06 ( 14.06)\t"
    "Acc@5  40.62 ( 40.62)",
    ' *   Acc@1 18.200 Acc@5 45.000',
    ' *   Acc@1 17.900 Acc@5 44.600',
    'Best acc: 17.90',
]) + "\n"


def test_the_sample_is_the_seed_run_in_this_format():
    assert SAMPLE.read_text() == imagenet_log(SEED_RUN)


def test_the_seed_like_log_is_read_whole():
    assert detect(SAMPLE) == "imagenet-example"
    record = parse_log(SAMPLE)
    assert record.notes["lines_not_understood"] == 0 and record.notes["lines_understood"] == 301
    assert (record.source, record.dataset, record.num_classes, record.model) == (
        "log:imagenet-example", "cifar10", 10, "vit_small")
    assert record.claims_pretrained and record.init == SEED_RUN.init and record.complete
    (state,) = record.states
    assert len(state.epochs) == 60 and state.first_epoch_accuracy == 20.66
    assert state.best_accuracy == 74.12 and state.extra["best_sa_logged"] == 74.12
    assert (state.first_batch_loss, state.first_batch_accuracy) == (2.3346, 7.031)
    assert state.intra_epoch == [(0, 352, 2.3346, 7.031), (200, 352, 2.199, 17.013)]
    assert state.epochs[0].train_loss == 2.199 and state.epochs[0].train_accuracy == 17.013
    assert record.spec["recipe"] == {"epochs": 60, "lr": 0.01, "batch_size": 128, "weight_decay": 0.0001}


def test_the_newer_example_acc_at_1_with_validation_and_test(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(NEWER)
    record = parse_log(path)
    assert record.source == "log:imagenet-example" and record.notes["lines_not_understood"] == 0
    (state,) = record.states
    assert [(e.epoch, e.test_accuracy, e.lr) for e in state.epochs] == [(0, 10.54, 0.1), (1, 17.9, 0.1)]
    assert state.extra["validation_accuracy"] == [[0, 11.02], [1, 18.2]]
    assert (state.first_batch_loss, state.first_batch_accuracy) == (4.6052, 0.78)
    assert state.epochs[0].train_loss == 4.2 and state.epochs[0].train_accuracy == 6.1
    assert not record.claims_pretrained and record.complete and state.extra["best_sa_logged"] == 17.9


def test_an_epoch_cut_before_its_evaluation_is_not_entered(tmp_path):
    path = tmp_path / "cut.log"
    path.write_text(NEWER.split("Epoch: [1]")[0] + "Epoch: [1][  0/391]\tLoss 3.5 (3.5)\tAcc@1 14.06 (14.06)\n")
    (state,) = parse_log(path).states
    assert [e.epoch for e in state.epochs] == [0]


def test_an_impossible_accuracy_is_refused_and_said(tmp_path):
    path = tmp_path / "bad.log"
    path.write_text("Epoch: [0][0/10]\tLoss 2.3 (2.3)\tPrec@1 9.4 (9.4)\n * Prec@1 140.000 Prec@5 99.0\n")
    record = parse_log(path)
    assert record.states[0].epochs == []
    assert "test accuracy 140% is outside 0-100%" in record.notes["parse_problems"][0]


def test_the_research_format_keeps_its_logs(tmp_path):
    for run in (SEED_RUN, HEALTHY_RUN):
        path = tmp_path / f"{run.name}.log"
        path.write_text(research_log(run))
        assert detect(path) == "research"
