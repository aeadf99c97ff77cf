"""Recipe budgets: a ViT trained from scratch (in effect) for too few epochs cannot reach the bar."""
from harness.expect import Expectation
from harness.recipes import assess
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.suite import BarBook
from suites.profiles import BASELINE_BARS

BOOK = BarBook("nightly")
BOOK.add(BASELINE_BARS, "suites.profiles")
BARS = {i: BOOK.get(i) for i in BOOK.ids()}
ACC, START = BARS["baseline/cifar10/state0/accuracy"], BARS["baseline/cifar10/state0/pretrained_start"]


def _record(first_test: float, *, claims=True, model="vit_small", epochs=60) -> RunRecord:
    state = StateRecord(index=0, epochs=[EpochRecord(0, 2.0, 15.0, first_test)])
    return RunRecord(run_id="r", source="log:research", dataset="cifar10", num_classes=10, model=model,
                     spec={"recipe": {"epochs": epochs}}, claims_pretrained=claims, states=[state])


def test_a_failed_pretrained_start_is_scratch_in_effect():
    finding, _ = assess(_record(20.66), ACC, START)
    assert finding.epochs == 60 and finding.budget.min_epochs == 200
    assert finding.cause() == (
        "recipe too short: from scratch in effect (claims a pretrained init, but 20.66% after "
        "epoch 0 < floor 50%), trained for 60 epochs (< 200 a ViT needs from scratch for 95% on cifar10)")
    verdict = BARS["baseline/cifar10/state0/recipe"].evaluate(finding.epochs, finding.evidence())
    assert not verdict.passed and verdict.gap == -140


def test_no_claim_is_scratch_and_a_long_recipe_passes():
    finding, _ = assess(_record(20.0, claims=False, epochs=300), ACC, START)
    assert finding.start == "trained from scratch (no pretrained init claimed)"
    assert BARS["baseline/cifar10/state0/recipe"].evaluate(finding.epochs).passed


def test_no_budget_for_a_pretrained_start_another_model_or_a_lower_bar():
    assert assess(_record(94.2), ACC, START)[0] is None
    assert "no recipe budget for resnet18" in assess(_record(20.0, model="resnet18"), ACC, START)[1]
    low = Expectation(ACC.id, ACC.title, ">=", 70.0, "%")
    assert "below the 95%" in assess(_record(20.0), low, START)[1]
