"""Pretrained-start evidence: the first epoch decides; the first-batch loss is quoted against ln C."""
import math

from harness.expect import Expectation
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.start import epoch_zero, loss_vs_ln, start_evidence

FLOOR = Expectation("baseline/cifar10/state0/pretrained_start", "Pretrained start", ">=", 50.0, "%")


def _run(first_test: float, loss: float, intra) -> tuple:
    state = StateRecord(index=0, first_batch_loss=loss, first_batch_accuracy=intra[0][3],
                        intra_epoch=intra,
                        epochs=[EpochRecord(0, 2.0, 15.0, first_test), EpochRecord(1, 1.5, 30.0, 40.0)])
    record = RunRecord(run_id="r", source="log:research", dataset="cifar10", num_classes=10,
                       model="vit_small", init="init.pth.tar", claims_pretrained=True, states=[state])
    return record, state


def test_loss_against_ln_c():
    assert loss_vs_ln(2.3346, 10) == "first-batch loss 2.3346 = ln 10 + 1%"
    assert loss_vs_ln(4.3, 100) == "first-batch loss 4.3 = ln 100 - 7%"   # no digits the log lacks
    assert loss_vs_ln(None, 10) == "first-batch loss not in the log"


def test_a_random_start_is_named_with_its_curve_and_loss():
    record, state = _run(20.66, 2.3346, [(0, 352, 2.3346, 7.031), (200, 352, 2.199, 17.013)])
    evidence = start_evidence(record, state, epoch_zero(state), FLOOR)
    assert evidence["note"] == (
        "claims a pretrained init but learns like a random one: 20.66% after epoch 0 (floor 50%); "
        "first-batch loss 2.3346 = ln 10 + 1%; running accuracy in epoch 0: 7.03% at step 0/352 "
        "-> 17.01% at step 200/352")
    assert evidence["first_batch_loss"] == 2.3346
    assert evidence["ln_num_classes"] == round(math.log(10), 4)
    assert evidence["intra_epoch_curve"] == [[0, 352, 2.3346, 7.03], [200, 352, 2.199, 17.01]]


def test_a_fresh_head_on_a_trained_backbone_passes_despite_a_loss_near_ln_c():
    record, state = _run(94.21, 2.3412, [(0, 352, 2.3412, 9.375), (200, 352, 0.6205, 80.41)])
    note = start_evidence(record, state, epoch_zero(state), FLOOR)["note"]
    assert note.startswith("learns like a pretrained start: 94.21% after epoch 0 (floor 50%); "
                           "first-batch loss 2.3412 = ln 10 + 2% (a fresh head")


def test_epoch_zero_needs_epoch_0_with_a_test_accuracy():
    state = StateRecord(index=0, epochs=[EpochRecord(5, 1.0, 50.0, 60.0)])
    assert epoch_zero(state) is None
    assert epoch_zero(StateRecord(index=0, epochs=[EpochRecord(0, 1.0, 50.0, None)])) is None
