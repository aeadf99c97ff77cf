"""Baseline suite: State 0 of each profile case reaches its accuracy bar, and a run that claims
a pretrained init learns like one in its first epoch. The same tests judge a training log given
with --from-log; the recipe verdict says when the recipe itself cannot reach the bar."""
import math
from pathlib import Path

import pytest

from harness.logs.unread import why_unread
from harness.recipes import assess
from harness.start import epoch_zero, start_evidence
from harness.timmref import timm_name
from ..profiles import BASELINE_BARS, BASELINE_CASES

SUITE = "baseline"
HARNESS_CASES = BASELINE_CASES
HARNESS_BARS = BASELINE_BARS


def _state0(record):
    state = record.state(0)
    if state is None or state.best_epoch is None:
        why = f"; {why_unread(record)}" if record.source.startswith("log:") else ""
        pytest.fail(f"{record.source} run {record.run_id}: no test accuracy for state 0 "
                    f"({len(record.states)} states, complete={record.complete}); nothing to "
                    f"judge{why}", pytrace=False)
    return state


def _r(value, digits):
    return None if value is None else round(value, digits)


def _recipe(harness, case, record):
    base = f"baseline/{case.name}/state0"
    needed = [f"{base}/{name}" for name in ("recipe", "accuracy", "pretrained_start")]
    if not all(harness.has_bar(i) for i in needed):
        return None, f"profile {harness.profile.name} has no recipe bar for {case.name}"
    return assess(record, harness.bar(f"{base}/accuracy"), harness.bar(f"{base}/pretrained_start"))


def test_state0_accuracy(harness, case):
    record = harness.run(case)
    state = _state0(record)
    best = state.best_epoch
    finding, _ = _recipe(harness, case, record)
    evidence = {"metric": "best test accuracy over the state's epochs (the harness's figure; the "
                          "research group's 'best SA' is the test accuracy at the best-validation "
                          "epoch: best_sa_at_best_validation where the run held out validation "
                          "images)",
                "best_sa_at_best_validation": _r(state.best_sa, 4),
                "best_epoch": best.epoch, "epochs": len(state.epochs),
                "final_accuracy": _r(state.final_accuracy, 4), "run_id": record.run_id,
                "source": record.source, "seed": record.spec.get("seed"), "model": record.model,
                "init": record.init, "first_batch_loss": _r(state.first_batch_loss, 4),
                "ln_num_classes": _r(math.log(record.num_classes), 4) if record.num_classes > 1 else None,
                "reused_stored_run": bool(record.notes.get("reused")),
                "device": record.environment.get("device_name")}
    if finding is not None:
        evidence["note"] = finding.cause()
    harness.check_epoch(f"baseline/{case.name}/state0/accuracy", best, evidence)


def test_pretrained_start(harness, case):
    if not case.spec.claims_pretrained:
        pytest.skip("nothing claims a pretrained start: no --init given and no claim in a "
                    "--from-log log (pass --init FILE to judge one)")
    record = harness.run(case)
    state = _state0(record)
    first = epoch_zero(state)
    if first is None:
        pytest.skip(f"{record.source}: no test accuracy after epoch 0 of state 0 "
                    f"(the record starts at epoch {state.epochs[0].epoch}); nothing to judge")
    verdict_id = f"baseline/{case.name}/state0/pretrained_start"
    harness.check_epoch(verdict_id, first,
                        start_evidence(record, state, first, harness.bar(verdict_id)))


def test_recipe(harness, case):
    if not harness.has_bar(f"baseline/{case.name}/state0/recipe"):
        pytest.skip(f"recipe: profile {harness.profile.name} has no recipe budget for {case.name}")
    record = harness.run(case)
    finding, why_not = _recipe(harness, case, record)
    if finding is None:
        pytest.skip(f"recipe: {why_not}")
    harness.check(f"baseline/{case.name}/state0/recipe", finding.epochs, finding.evidence())


def test_init_not_random(harness, case):
    """The --init file, judged from its weights alone before any training: a file that claims a
    pretrained start must be `trained` or `finetune-init` (suites/checkpoints gives the detail)."""
    init = case.spec.init
    if harness.session.log_record is not None and init is not None:
        pytest.skip(f"the init {init!r} is what the log claims (--from-log): a log's init is a "
                    f"claim only, no file is read or judged; judge a file with "
                    f"`harness inspect FILE`")
    if init is None or timm_name(init) is not None:
        pytest.skip("no --init file given: nothing claims a pretrained start "
                    "(pass --init FILE to judge one; timm:NAME weights come from timm's hub)")
    if not Path(init).is_file():
        pytest.skip(f"the claimed init {init!r} is not a file on this machine (a log's claim); "
                    f"pass --init FILE to judge the file itself")
    from harness.forensics.inspection import claim_verdict, inspect_checkpoint

    result = inspect_checkpoint(init, claim="the --init of a run")
    harness.record(claim_verdict(result, f"baseline/{case.name}/init/pretrained"))
