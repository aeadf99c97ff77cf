"""The two loops a case measures, in one run under the same conditions.

The reference loop is the research group's style: fp32, eager, SGD, explicit softmax attention,
``.item()`` of loss and accuracy after every step. The engine loop is the harness's own, exactly
as the engine runs a state (``runs.batches_for``, ``train.training_forward``,
``train.train_phase``), in one of the variants of :data:`bench.cases.VARIANTS`.
"""
from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch
from torch import nn

from bench.cases import BenchCase, Variant
from bench.ceiling import sync
from bench.workload import input_size, reference_model
from harness.data import Dataset, Split
from harness.data.batches import Batches
from harness.models import create_model
from harness.runs import batches_for
from harness.spec import RunSpec
from harness.train import (PhaseHooks, evaluation_forward, is_compiled, train_phase, training_forward,
                           uses_fused_attention)

REFERENCE_DATA = ("device", "loader")


class ReferenceLoop:
    """The research group's style: fp32, eager, SGD, explicit attention, a host sync per step.

    ``data="device"``: normalised float batches prepared once on the device (no per-step data
    cost at all: a lower bound on the reference's time, so the ratio is conservative).
    ``data="loader"``: their data path, a DataLoader applying torchvision transforms per image
    (crop/flip as the recipe says, to float, normalise, resize), batches copied to the device.
    """

    def __init__(self, case: BenchCase, dataset: Dataset, device: torch.device, data: str,
                 workers: int) -> None:
        torch.manual_seed(0)
        self.device, self.data = device, data
        self.model = reference_model(case, dataset, device).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        self.criterion = nn.CrossEntropyLoss()
        self.batch = min(case.reference_batch, len(dataset.train))
        self.batches = (_device_batches(case, dataset, device, self.batch) if data == "device"
                        else _loader_batches(case, dataset, self.batch, workers))
        self.k = 0
        self.running_loss, self.correct, self.seen = 0.0, 0, 0

    def steps(self, n: int) -> float:
        """Run ``n`` steps; seconds taken (synchronised)."""
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self._step()
        sync(self.device)
        return time.perf_counter() - t0

    def _step(self) -> None:
        x, y = next(self.batches)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        self.k += 1
        self.optimizer.zero_grad()
        out = self.model(x)
        loss = self.criterion(out, y)
        loss.backward()
        self.optimizer.step()
        self.running_loss += loss.item()                        # host sync, every step
        self.correct += (out.argmax(1) == y).sum().item()       # host sync, every step
        self.seen += len(y)


def _device_batches(case: BenchCase, dataset: Dataset, device: torch.device, batch: int):
    """Normalised (and resized) float batches prepared once on the device, cycled for ever."""
    need = min(len(dataset.train), batch * case.reference_steps)
    order = torch.randperm(len(dataset.train), generator=torch.Generator().manual_seed(0))[:need]
    split = Split(dataset.train.images[order], dataset.train.labels[order])
    size = input_size(case, dataset)
    prepared = list(Batches(split, dataset, batch_size=batch, device=device, train=False,
                            image_size=None if size == dataset.image_size else size))
    prepared = [b for b in prepared if len(b[1]) == batch]
    return itertools.cycle(prepared)


class _PerImage(torch.utils.data.Dataset):
    def __init__(self, split: Split, transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return self.transform(self.split.images[i]), self.split.labels[i]


def _loader_batches(case: BenchCase, dataset: Dataset, batch: int, workers: int):
    """A DataLoader with per-image torchvision transforms, reshuffled every pass, for ever."""
    from torchvision.transforms import v2

    recipe, size = case.recipe, input_size(case, dataset)
    steps = []
    if recipe.augment != "none" and recipe.crop_padding:
        steps.append(v2.RandomCrop(dataset.image_size, padding=recipe.crop_padding))
    if recipe.augment == "crop_flip" and dataset.flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(dataset.mean), list(dataset.std))]
    if size != dataset.image_size:
        steps.append(v2.Resize(size, antialias=False))
    loader = torch.utils.data.DataLoader(_PerImage(dataset.train, v2.Compose(steps)), batch_size=batch,
                                         shuffle=True, drop_last=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    while True:
        yield from loader


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


class EngineLoop:
    """The harness's own loop, as the engine runs a state: one ``train_phase`` epoch per round
    (train on ``batches_for``'s batches through ``training_forward``, then evaluate through
    ``evaluation_forward``), run as ``variant`` says."""

    def __init__(self, case: BenchCase, dataset: Dataset, device: torch.device, variant: Variant,
                 compile: bool) -> None:
        self.variant = variant
        self.spec = RunSpec(model=case.model, dataset=case.dataset, image_size=case.image_size,
                            recipe=replace(variant.recipe(case.recipe), epochs=1, warmup_epochs=0,
                                           milestones=()),
                            label=f"bench {case.name} {variant.name}")
        torch.manual_seed(self.spec.seed)
        self.model = create_model(case.model, dataset.num_classes, dataset.channels).to(device)
        if variant.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.model.register_forward_pre_hook(_channels_last_input)
        self.train, self.test = batches_for(self.spec, dataset, device)
        self.step_fn = training_forward(self.model, device, compile, variant.compile_mode)
        self.eval_fn = evaluation_forward(self.model, device, compile, variant.compile_mode)
        self.peak_memory_mb: Optional[float] = None
        self.last_loss = float("nan")

    def epoch(self, hooks: PhaseHooks = PhaseHooks()) -> tuple[float, float]:
        """(train seconds, eval seconds) of one epoch of ``train_phase``."""
        phase = train_phase(self.model, self.train, self.test, self.spec.recipe, hooks=hooks,
                            step_fn=self.step_fn, eval_fn=self.eval_fn)
        self.peak_memory_mb = phase.peak_memory_mb
        self.last_loss = phase.epochs[-1].train_loss
        train_s = phase.epoch_train_seconds[0]
        return train_s, phase.epochs[0].seconds - train_s


@dataclass
class _Times:
    warmup: float
    train: list
    eval: list


# A variant's compilation as a multiple of the default mode's, measured on the card: the estimate
# a deadline keeps or leaves a variant out by (max-autotune benchmarks matmul templates: minutes
# where the default takes tens of seconds; CUDA graphs are recorded once more per shape). These
# factors are estimates, not measurements; what each variant took is in its figures.
COMPILE_FACTOR = {None: 1.0, "reduce-overhead": 2.0, "max-autotune-no-cudagraphs": 6.0}


@dataclass
class _Plan:
    """Which variants fit before a deadline (seconds after ``start``; None: all of them)."""

    start: float
    deadline: Optional[float]
    left_out: dict

    def fits(self, variant: Variant, base: "_Base", reserved: float) -> bool:
        """Whether ``variant`` (its compile, its timed rounds and a profiled epoch) fits in what is
        left after ``reserved`` seconds; if not, why goes to :attr:`left_out`."""
        if self.deadline is None:
            return True
        compile_s = COMPILE_FACTOR.get(variant.compile_mode, COMPILE_FACTOR[None]) * base.compile_s
        cost = compile_s + (base.rounds + 1) * base.epoch_s * variant.batch_scale
        left = self.deadline - (time.perf_counter() - self.start) - reserved
        if cost <= left:
            return True
        self.left_out[variant.name] = (f"~{cost:.0f} s estimated (compile ~{compile_s:.0f} s, "
                                       f"{base.rounds + 1} epochs of ~{base.epoch_s * variant.batch_scale:.1f} s, "
                                       f"from the default variant measured here), {max(left, 0):.0f} s left")
        return False


@dataclass
class _Base:
    """The first variant's measured costs: its compile (warm-up epoch less a steady one) and a
    steady epoch (train + eval), and the reference loop's estimated time."""

    compile_s: float
    epoch_s: float
    rounds: int


def _warm(engine: "EngineLoop") -> tuple[_Times, float]:
    """The warm-up epoch (compilation), then one steady epoch timed: (times, steady epoch s)."""
    warm_train, warm_eval = engine.epoch()
    train_s, eval_s = engine.epoch()
    return _Times(warm_train, [], []), train_s + eval_s


def measure(case: BenchCase, dataset: Dataset, device: torch.device, variants: list[Variant],
            compile: bool, data: str, workers: int,
            deadline: Optional[float] = None) -> tuple[dict, dict, dict, dict]:
    """Warm every loop up, then alternate rounds (one epoch of each engine variant, then
    reference steps) so that all see the same conditions; throughput = images / seconds summed
    over the timed rounds. With ``deadline`` (seconds from now), a variant after the first is
    left out when its cost, estimated from the first variant's compile and epoch measured here,
    does not fit in what is left. Returns (engine figures per variant, reference figures, the
    loops, the variants left out and why)."""
    plan = _Plan(time.perf_counter(), deadline, {})
    reference = ReferenceLoop(case, dataset, device, data, workers)
    ref_warm = reference.steps(case.reference_warmup)
    per_round = max(1, case.reference_steps // case.rounds)
    ref_reserve = ref_warm / max(1, case.reference_warmup) * per_round * case.rounds
    engines, times, base = {}, {}, None
    for variant in variants:
        if base is not None and not plan.fits(variant, base, ref_reserve + base.rounds * sum(
                base.epoch_s * engines[n].variant.batch_scale for n in engines)):
            continue
        try:
            engine = EngineLoop(case, dataset, device, variant, compile)
            times[variant.name], steady = _warm(engine)
        except RuntimeError as exc:     # e.g. a compile mode or a batch this card cannot run
            if base is None:
                raise
            plan.left_out[variant.name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            continue
        engines[variant.name] = engine
        if base is None:
            base = _Base(max(0.0, times[variant.name].warmup - steady), steady, case.rounds)
    ref_times = []
    for _ in range(case.rounds):
        for name, engine in engines.items():
            train_s, eval_s = engine.epoch()
            times[name].train.append(train_s)
            times[name].eval.append(eval_s)
        ref_times.append(reference.steps(per_round))
    ref = {"img_per_s": per_round * reference.batch * len(ref_times) / sum(ref_times), "warmup_s": ref_warm,
           "batch_size": reference.batch, "steps_timed": per_round * len(ref_times),
           "round_seconds_each": [round(t, 4) for t in ref_times],
           "final_running_loss": reference.running_loss / max(1, reference.k),
           "data": data, "workers": workers}
    return {name: _figures(engines[name], times[name]) for name in engines}, ref, engines, plan.left_out


def _figures(engine: EngineLoop, t: _Times) -> dict:
    epoch_imgs = engine.train.samples_per_epoch
    steady = statistics.mean(t.train)
    return {"variant": engine.variant.name, "img_per_s": epoch_imgs * len(t.train) / sum(t.train),
            "epoch_train_seconds_measured": steady, "epoch_train_seconds_each": [round(s, 4) for s in t.train],
            "warmup_epoch_seconds": t.warmup, "warmup_s": t.warmup - steady,
            "eval_seconds_measured": statistics.mean(t.eval),
            "eval_img_per_s": len(engine.test.labels) * len(t.eval) / sum(t.eval),
            "train_images": len(engine.train.labels), "images_per_epoch": epoch_imgs,
            "test_images": len(engine.test.labels), "batch_size": engine.train.batch_size,
            "input_size": int(next(iter(engine.test))[0].shape[-1]), "epochs_timed": len(t.train),
            "compiled": is_compiled(engine.step_fn), "eval_compiled": is_compiled(engine.eval_fn),
            "compile_mode": engine.variant.compile_mode, "channels_last": engine.variant.channels_last,
            "fused_attention": uses_fused_attention(engine.model),
            "peak_memory_mb": engine.peak_memory_mb, "final_train_loss": engine.last_loss,
            "recipe": asdict(engine.spec.recipe)}
