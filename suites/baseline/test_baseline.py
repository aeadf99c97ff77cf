"""Baseline suite: State 0 of each profile case reaches its accuracy bar, and a run that claims
a pretrained init learns like one in its first epoch."""
import math

import pytest

SUITE = "baseline"


def test_state0_accuracy(harness, case):
    record = harness.run(case)
    state = record.state(0)
    best = state.best_epoch
    harness.check_accuracy(
        f"baseline/{case.name}/state0/accuracy", best.test_correct, best.test_n,
        {"metric": "best test accuracy over the state's epochs (the research group's 'best SA')",
         "best_epoch": best.epoch, "epochs": len(state.epochs),
         "final_accuracy": round(state.final_accuracy, 4), "run_id": record.run_id,
         "seed": record.spec.get("seed"), "model": record.model, "init": record.init,
         "first_batch_loss": round(state.first_batch_loss, 4),
         "ln_num_classes": round(math.log(record.num_classes), 4),
         "reused_stored_run": bool(record.notes.get("reused")),
         "device": record.environment.get("device_name")})


def test_pretrained_start(harness, case):
    if not case.spec.claims_pretrained:
        pytest.skip("no --init given: nothing claims a pretrained start "
                    "(pass --init FILE to judge one)")
    record = harness.run(case)
    state = record.state(0)
    first = state.epochs[0]
    ln_c = math.log(record.num_classes)
    harness.check_accuracy(
        f"baseline/{case.name}/state0/pretrained_start", first.test_correct, first.test_n,
        {"metric": "test accuracy after epoch 0",
         "first_batch_loss": round(state.first_batch_loss, 4), "ln_num_classes": round(ln_c, 4),
         "first_batch_loss_over_ln_c": round(state.first_batch_loss / ln_c, 4),
         "intra_epoch_curve": [[s, n, round(loss, 4), round(acc, 2)] for s, n, loss, acc in state.intra_epoch],
         "init": record.init, "init_audit": record.init_audit, "run_id": record.run_id})


def test_init_not_random(harness, case):
    """The --init file, judged from its weights alone before any training: a file that claims a
    pretrained start must be `trained` or `finetune-init` (suites/checkpoints gives the detail)."""
    init = case.spec.init
    if init is None or init.startswith("timm:"):
        pytest.skip("no --init file given: nothing claims a pretrained start "
                    "(pass --init FILE to judge one; timm:NAME weights come from timm's hub)")
    from harness.forensics.inspection import claim_verdict, inspect_checkpoint

    result = inspect_checkpoint(init, claim="the --init of a run")
    harness.record(claim_verdict(result, f"baseline/{case.name}/init/pretrained"))
