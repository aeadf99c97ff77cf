"""Profiles: the specs and bars of smoke / nightly / full, as data.

A profile maps each suite to its cases (one RunSpec each) and each verdict id to its bar. The
engine never knows which profile is running; profiles differ only in this data.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from harness.expect import Expectation
from harness.recipes import recipe_bars
from harness.spec import PruneSpec, Recipe, RunSpec

PRETRAINED_START_NOTE = ("a pretrained backbone learns a linear head within one epoch; "
                         "a random backbone does not")


@dataclass(frozen=True)
class Case:
    """One run judged by a suite: ``name`` (e.g. the dataset) and its spec."""

    suite: str
    name: str
    spec: RunSpec

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    needs_cuda: bool
    needs_data_root: bool
    needs_init: bool
    cases: tuple = ()                       # tuple[Case]
    bars: dict = field(default_factory=dict)  # verdict id -> Expectation

    def cases_for(self, suite: str) -> list[Case]:
        return [c for c in self.cases if c.suite == suite]

    def bar(self, verdict_id: str) -> Expectation:
        return self.bars[verdict_id]

    def with_init(self, init: Optional[str]) -> "Profile":
        """Every case starts from ``init`` (the user's --init); None keeps the profile's own."""
        if init is None:
            return self
        cases = tuple(replace(c, spec=replace(c.spec, init=init)) for c in self.cases)
        return replace(self, cases=cases)

    def with_overrides(self, overrides) -> "Profile":
        bars = dict(self.bars)
        for o in overrides:
            bars[o.id] = bars[o.id].with_threshold(o.op, o.threshold)
        return replace(self, bars=bars)

    @property
    def datasets(self) -> list[str]:
        return sorted({c.spec.dataset for c in self.cases})


def _baseline_bars(dataset: str, accuracy: float, start_floor: float) -> dict:
    base = f"baseline/{dataset}/state0"
    return {
        f"{base}/accuracy": Expectation(f"{base}/accuracy", f"State 0 accuracy on {dataset}",
                                        ">=", accuracy, "%"),
        f"{base}/pretrained_start": Expectation(
            f"{base}/pretrained_start", f"Pretrained start on {dataset} (test accuracy after epoch 0)",
            ">=", start_floor, "%"),
    }


def _pruning_cases(base: RunSpec, state_recipe: Recipe, **prune) -> tuple:
    """One case per method (refill, rsst) on ``base``'s State 0, named by the method."""
    return tuple(Case("pruning", method, replace(
        base, label=f"{base.dataset} {method}",
        prune=PruneSpec(method=method, state_recipe=state_recipe, **prune)))
        for method in ("refill", "rsst"))


def _pruning_bars(cases: tuple, state0_floor: float, floor: float) -> dict:
    """Per case and state: accuracy floor, sparsity within 0.1 pp of the schedule, masks nested,
    whole structures removed (Refill, RSST); at the last state, Refill >= RSST - 1 pp."""
    from harness.prune.methods import METHODS

    bars: dict = {}

    def add(vid: str, title: str, op: str, threshold: float, unit: str, tolerance: float = 0.0) -> None:
        bars[vid] = Expectation(vid, title, op, threshold, unit, tolerance)

    for case in cases:
        prune = case.spec.prune
        for k in range(prune.states + 1):
            base, what = f"pruning/{case.name}/state{k}", f"{case.name} State {k}"
            add(f"{base}/accuracy", f"{what} accuracy on {case.spec.dataset}", ">=",
                state0_floor if k == 0 else floor, "%")
            add(f"{base}/sparsity", f"{what} sparsity", "within", 100.0 * prune.sparsity_at(k), "%", 0.1)
            if k == 0:
                continue
            add(f"{base}/nesting", f"{what} weights pruned earlier and alive again", "==", 0, "weights")
            if METHODS[prune.method].structured:
                add(f"{base}/structure", f"{what} channels partly pruned or removed but not zero",
                    "==", 0, "channels")
    last = max(c.spec.prune.states for c in cases)
    vid = f"pruning/refill_vs_rsst/state{last}/accuracy"
    add(vid, f"State {last} accuracy of Refill minus RSST", ">=", -1.0, "%")
    return bars


# --- smoke: the embedded default, CPU, scikit-learn's digits, no download -------------------
SMOKE_RECIPE = Recipe(epochs=40, batch_size=32, lr=1e-3, optimizer="adamw", weight_decay=0.05,
                      warmup_epochs=1, label_smoothing=0.1, augment="none", eval_batch_size=512)
SMOKE_BASELINE = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=SMOKE_RECIPE, seed=0,
                         label="smoke digits baseline")

# Pruning: State 0 is the baseline run itself (shared); 3 states of 8 epochs fine-tune the
# pruned model (no rewind) towards 70% sparsity.
SMOKE_PRUNING = _pruning_cases(SMOKE_BASELINE, replace(SMOKE_RECIPE, epochs=8), states=3,
                               final_sparsity=0.7, rewind="none")

SMOKE = Profile(
    name="smoke",
    description="CPU embedded default: a small timm ViT on scikit-learn's 8x8 digits",
    needs_cuda=False, needs_data_root=False, needs_init=False,
    cases=(Case("baseline", "digits", SMOKE_BASELINE), *SMOKE_PRUNING),
    bars={**_baseline_bars("digits", 95.0, 50.0), **_pruning_bars(SMOKE_PRUNING, 95.0, 90.0)},
)

# --- nightly: CUDA, ViT-S fine-tuned on CIFAR-10/100 from --init ---------------------------
NIGHTLY_RECIPE = Recipe(epochs=7, batch_size=512, lr=0.03, optimizer="sgd", momentum=0.9,
                        weight_decay=0.0, warmup_epochs=1, label_smoothing=0.0,
                        augment="crop_flip", crop_padding=4, eval_batch_size=1024, grad_clip=1.0)


def _cifar_baseline(dataset: str, recipe: Recipe) -> RunSpec:
    return RunSpec(model="vit_small_patch16_224", dataset=dataset, recipe=recipe, image_size=224,
                   seed=0, label=f"{dataset} baseline")


# Pruning as in the seed: ViT-S/4 at 32x32 on CIFAR-10 from --init, 15 states towards 70%
# sparsity (State 15 >= 85%), each state rewound to the init and trained 5 epochs.
PRUNING_BASE = RunSpec(model="vit_small_patch4_32", dataset="cifar10", recipe=NIGHTLY_RECIPE,
                       seed=0, label="cifar10 pruning")
NIGHTLY_PRUNING = _pruning_cases(PRUNING_BASE, replace(NIGHTLY_RECIPE, epochs=5), states=15,
                                 final_sparsity=0.7, rewind="init")

NIGHTLY = Profile(
    name="nightly",
    description="CUDA: ViT-S/16 at 224x224 fine-tuned on CIFAR-10/100 from --init; "
                "ViT-S/4 at 32x32 pruned over 15 states on CIFAR-10",
    needs_cuda=True, needs_data_root=True, needs_init=True,
    cases=(Case("baseline", "cifar10", _cifar_baseline("cifar10", NIGHTLY_RECIPE)),
           Case("baseline", "cifar100", _cifar_baseline("cifar100", NIGHTLY_RECIPE)),
           *NIGHTLY_PRUNING),
    bars={**_baseline_bars("cifar10", 95.0, 50.0), **_baseline_bars("cifar100", 75.0, 40.0),
          **recipe_bars("cifar10"), **recipe_bars("cifar100"),
          **_pruning_bars(NIGHTLY_PRUNING, 95.0, 85.0)},
)

# --- full: the research group's recipe (60 epochs per state, SGD lr 0.01, batch 128) --------
FULL_RECIPE = Recipe(epochs=60, batch_size=128, lr=0.01, optimizer="sgd", momentum=0.9,
                     weight_decay=1e-4, warmup_epochs=1, augment="crop_flip", crop_padding=4,
                     eval_batch_size=1024)

FULL_PRUNING = _pruning_cases(replace(PRUNING_BASE, recipe=FULL_RECIPE), FULL_RECIPE, states=15,
                              final_sparsity=0.7, rewind="init")

FULL = Profile(
    name="full",
    description="CUDA: the research group's whole schedule (16 states of 60 epochs)",
    needs_cuda=True, needs_data_root=True, needs_init=True,
    cases=(Case("baseline", "cifar10", _cifar_baseline("cifar10", FULL_RECIPE)),
           Case("baseline", "cifar100", _cifar_baseline("cifar100", FULL_RECIPE)),
           *FULL_PRUNING),
    bars=dict(NIGHTLY.bars),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, NIGHTLY, FULL)}
PROFILE_CHOICES = ("auto", *PROFILES)

__all__ = ["Case", "Profile", "PROFILES", "PROFILE_CHOICES", "PruneSpec"]
