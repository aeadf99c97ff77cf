"""The benchmark's cases, their bars, and the variants of the engine's loop a run compares.

A case is a model on a dataset with the engine's recipe, a budget for the reference loop and its
bars (:class:`harness.suite.Bar`, judged on the engine as it trains: the ``default`` variant). A
variant changes how the engine's loop runs, never a recipe: a larger batch is its own variant,
named as such in the table and the JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from harness.suite import Bar
from harness.spec import Recipe
from suites.profiles import FULL_RECIPE, NIGHTLY_RECIPE, SMOKE_RECIPE

# What a bar's metric reads from a case's result (harness.suite.Bar ids end in the metric's name).
METRICS = {
    "engine_img_per_s": lambda r: r["engine_img_per_s"],
    "mfu": lambda r: 100.0 * r["mfu"],
    "ratio": lambda r: r["ratio"],
    "epoch_seconds": lambda r: r["epoch_seconds"],
    "schedule_minutes": lambda r: r["schedule_minutes"],
}


def bar(case: str, metric: str, op: str, threshold: float, unit: str, title: str) -> Bar:
    if metric not in METRICS:
        raise ValueError(f"bar metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return Bar(f"throughput/{case}/{metric}", title, op, threshold, unit)


@dataclass(frozen=True)
class BenchCase:
    name: str
    model: str
    dataset: str
    recipe: Recipe                  # the engine's recipe (run one epoch per round)
    image_size: Optional[int] = None
    train_n: Optional[int] = None   # subset of the train split (None: all of it)
    test_n: Optional[int] = None
    reference_batch: int = 128
    reference_steps: int = 60      # timed, spread over the rounds
    reference_warmup: int = 5
    rounds: int = 3                # timed rounds: one engine epoch per variant, then reference steps
    bars: tuple[Bar, ...] = ()
    cuda_bars: bool = True          # bars apply on CUDA only (False: everywhere)

    def quick(self) -> "BenchCase":
        """Small sizes: a few batches per epoch, a few reference steps."""
        train_n = min(self.train_n or 10 ** 9, 4 * self.recipe.batch_size)
        return replace(self, train_n=train_n if self.dataset != "digits" else self.train_n,
                       test_n=min(self.test_n or 10 ** 9, 1024),
                       reference_steps=min(self.reference_steps, 24), reference_warmup=2)


S4, S16 = "vit_small_patch4_32", "vit_small_patch16_224"
CASES: dict[str, BenchCase] = {c.name: c for c in (
    BenchCase(S4, S4, "cifar10", replace(FULL_RECIPE, batch_size=512), reference_steps=96, bars=(
        bar(S4, "mfu", ">=", 30.0, "%", "ViT-S/4 @32 engine MFU (issue 16: about 27,000 img/s on an H100)"),
        bar(S4, "engine_img_per_s", ">=", 20_000, "img/s", "ViT-S/4 @32 engine throughput"),
        bar(S4, "ratio", ">=", 6.0, "x", "ViT-S/4 @32 engine over the reference loop"),
        bar(S4, "epoch_seconds", "<=", 2.5, "s", "ViT-S/4 @32 seconds per CIFAR-10 epoch"),
        bar(S4, "schedule_minutes", "<=", 45.0, "min", "ViT-S/4 @32 16 x 60 epochs per method"))),
    BenchCase(S16, S16, "cifar10", NIGHTLY_RECIPE, image_size=224, train_n=30 * 512, test_n=2048,
              reference_steps=20, rounds=2, bars=(
                  bar(S16, "engine_img_per_s", ">=", 9_000, "img/s", "ViT-S/16 @224 engine throughput"),)),
    BenchCase("smoke", "vit_tiny_digits", "digits", replace(SMOKE_RECIPE, batch_size=256),
              reference_steps=44, rounds=4, cuda_bars=False,
              bars=(bar("smoke", "ratio", ">=", 1.0, "x", "smoke engine over the reference loop"),)),
)}
DEFAULT_CASES = {"cuda": (S4, S16), "cpu": ("smoke",)}


@dataclass(frozen=True)
class Variant:
    """How the engine's loop runs in one benchmark row (the recipe stays the case's)."""

    name: str
    description: str
    compile_mode: Optional[str] = None   # torch.compile's mode (None: its default)
    channels_last: bool = False          # the model and its inputs in channels-last memory format
    batch_scale: int = 1                 # a benchmark case with this many times the recipe's batch

    def recipe(self, recipe: Recipe) -> Recipe:
        return replace(recipe, batch_size=recipe.batch_size * self.batch_scale)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("default", "the engine as it trains: torch.compile's default mode on CUDA"),
    Variant("max-autotune", "torch.compile mode='max-autotune-no-cudagraphs' (autotuned matmul "
            "templates; minutes of compilation)", compile_mode="max-autotune-no-cudagraphs"),
    Variant("cudagraphs", "torch.compile mode='reduce-overhead' (CUDA graphs)",
            compile_mode="reduce-overhead"),
    Variant("channels-last", "the model (its patch-embedding convolution) and the inputs in "
            "channels-last memory format", channels_last=True),
    Variant("batch-x2", "twice the recipe's batch (a benchmark case only: the recipes keep "
            "theirs; the lr is not rescaled)", batch_scale=2),
)}
