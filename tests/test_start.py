"""Pretrained-start evidence: the first epoch decides; the first-batch loss is quoted against ln C."""
import pytest
import math

from harness.expect import Expectation
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.start import curve_text, epoch_zero, loss_vs_ln, start_evidence

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


def test_a_long_curve_is_spelled_as_a_dozen_evenly_spaced_points():
    intra = [(i, 300_000, 2.3, 10.0 + i / 10_000) for i in range(300_000)]
    text = curve_text(intra)
    assert text.startswith("running accuracy (12 of the 300,000 points in the record shown, evenly "
                           "spaced) in epoch 0: 10.00% at step 0/300000 -> 12.73% at step 27273/300000 -> ")
    assert text.endswith("-> 37.27% at step 272726/300000 -> 40.00% at step 299999/300000")
    assert text.count(" -> ") == 11 and len(text) < 500
    short = curve_text([(0, 352, 2.3346, 7.031), (200, 352, 2.199, 17.013)])
    assert short == "running accuracy in epoch 0: 7.03% at step 0/352 -> 17.01% at step 200/352"


@pytest.mark.slow
def test_a_log_spelling_300k_batches_of_epoch_0_gives_bounded_evidence(tmp_path):
    """The 254 MB log of issue 10 put every epoch-0 batch line into the note (a 202 MB report.md,
    one 100 MB terminal line; a GitHub step summary holds 1 MiB). The record keeps at most 512
    points, evenly spaced, and says how many the log had; the note spells 12; the evidence 100.
    Measured in a subprocess: peak memory and wall time against generous caps."""
    from test_logs_bounds import measure

    batches = "".join(f"Epoch: [0][{i}/300000]\tLoss 2.3000 (2.3000)\tAccuracy {i % 90}.000 "
                      f"({10 + i / 10_000:.3f})\tTime 0.1\n" for i in range(300_000))
    path = tmp_path / "batches.log"
    path.write_text("Namespace(dataset='cifar10', arch='vit_small', vit_pretrained=True)\n"
                    "pruning state 0\n0.01\n" + batches + "train_accuracy 30\nvalid_accuracy 21\n"
                    "valid_accuracy 20.66\n")
    out = measure(f"""
        from harness.escape import dumps
        from harness.logs import parse_log
        from harness.start import epoch_zero, start_evidence
        from harness.expect import Expectation
        FLOOR = Expectation("baseline/cifar10/state0/pretrained_start", "Pretrained start", ">=", 50.0, "%")
        record = parse_log({str(path)!r})
        state = record.state(0)
        evidence = start_evidence(record, state, epoch_zero(state), FLOOR)
        out.update(points=len(state.intra_epoch), note=evidence["note"], json_bytes=len(dumps(evidence)),
                   curve=len(evidence["intra_epoch_curve"]), cut=evidence["intra_epoch_curve_cut"],
                   record_bytes=len(dumps(record.to_dict())))
    """)
    assert out["points"] <= 512 and out["curve"] == 100
    assert out["cut"] == ["state 0: 294 of the 300,000 points of the curve inside epoch 0 kept, "
                          "evenly spaced (the first and the last among them)"]
    assert ("(12 of the 294 points in the record shown, evenly spaced) in epoch 0: 10.00% at step "
            "0/300000 -> ") in out["note"]
    assert out["note"].endswith("-> 40.00% at step 299999/300000") and len(out["note"]) < 1000
    assert out["json_bytes"] < 16_000 and out["record_bytes"] < 64_000
    assert out["peak_mb"] < 300 and out["cpu_seconds"] < 120, out
