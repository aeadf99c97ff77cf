"""Recipe budgets: how many epochs a start needs before a bar can be expected, as data.

A run whose recipe is visible (an engine spec, or the arguments a log printed) is checked against
the budget of its *effective* start: a run that claims no pretrained init, or whose first epoch
fails the pretrained-start floor, trains from scratch in effect. The finding explains the
accuracy gap beside it (the cause next to the symptom).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from harness.expect import Expectation
from harness.record import RunRecord
from harness.start import epoch_zero

SEED_ANALYSIS = ("the research group's analysis of its 74% State 0 run: a ViT needs 200-300 epochs "
                 "from scratch on CIFAR-10 for 95%+, 300-400 on CIFAR-100 for 75%+")


@dataclass(frozen=True)
class Budget:
    """``family`` models trained from scratch on ``dataset`` need ``min_epochs`` for ``accuracy``."""

    family: str         # a substring of the model name, e.g. "vit"
    label: str          # how a message names the family, e.g. "ViT"
    dataset: str
    min_epochs: int
    accuracy: float
    source: str = SEED_ANALYSIS

    def matches(self, model: str, dataset: str) -> bool:
        return self.family in model.lower() and dataset == self.dataset


BUDGETS = (Budget("vit", "ViT", "cifar10", 200, 95.0), Budget("vit", "ViT", "cifar100", 300, 75.0))


def recipe_bars(dataset: str) -> list:
    """The bars ``baseline/<dataset>/state0/recipe`` of the budgets for ``dataset``."""
    from harness.suite import Bar

    return [Bar(f"baseline/{dataset}/state0/recipe", f"Recipe on {dataset}: epochs of a "
                f"{b.label} trained from scratch, for {b.accuracy:g}%", ">=", b.min_epochs, "epochs")
            for b in BUDGETS if b.dataset == dataset]


@dataclass(frozen=True)
class Finding:
    epochs: int
    budget: Budget
    start: str          # why the run counts as trained from scratch

    def cause(self) -> str:
        short = self.epochs < self.budget.min_epochs
        return (f"{'recipe too short' if short else 'recipe'}: {self.start}, trained for "
                f"{self.epochs} epochs ({'<' if short else '>='} {self.budget.min_epochs} a "
                f"{self.budget.label} needs from scratch for {self.budget.accuracy:g}% "
                f"on {self.budget.dataset})")

    def evidence(self) -> dict:
        return {"note": self.cause(), "epochs": self.epochs, "start": self.start,
                "budget_accuracy": self.budget.accuracy, "budget_source": self.budget.source}


def assess(record: RunRecord, accuracy_bar: Expectation, start_bar: Expectation) -> tuple:
    """(Finding, None) when a budget applies, else (None, why not)."""
    budget = next((b for b in BUDGETS if b.matches(record.model, record.dataset)), None)
    if budget is None:
        return None, f"no recipe budget for {record.model} on {record.dataset}"
    if accuracy_bar.threshold < budget.accuracy:
        return None, (f"the bar ({accuracy_bar.threshold:g}%) is below the {budget.accuracy:g}% "
                      f"the budget is for")
    start = _scratch(record, start_bar)
    if start is None:
        return None, "the run starts pretrained (or its first epoch is unknown): no from-scratch budget applies"
    epochs = _epochs(record)
    if epochs is None:
        return None, f"the {record.source} record shows no recipe (no epochs argument)"
    return Finding(epochs, budget, start), ""


def _scratch(record: RunRecord, start_bar: Expectation) -> Optional[str]:
    if not record.claims_pretrained:
        return "trained from scratch (no pretrained init claimed)"
    state = record.state(0)
    first = epoch_zero(state) if state is not None else None
    if first is None or start_bar.evaluate(first.test_accuracy).passed:
        return None
    return (f"from scratch in effect (claims a pretrained init, but {first.test_accuracy:.2f}% "
            f"after epoch 0 < floor {start_bar.threshold:g}%)")


def _epochs(record: RunRecord) -> Optional[int]:
    value = (record.spec.get("recipe") or {}).get("epochs")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    state = record.state(0)
    return len(state.epochs) if state is not None and record.complete and state.epochs else None
