"""One training phase: optimiser and schedule from the Recipe, metrics kept on the device.

Loss and accuracy are accumulated as device tensors and read once per epoch, so no host
synchronisation happens inside an epoch. bf16 autocast on CUDA, fp32 on CPU. The first
training batch's loss and accuracy (before any update) are recorded as evidence.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn

from harness.data.batches import Batches
from harness.record import EpochRecord

if TYPE_CHECKING:   # the spec validates Recipe names against this module's registries
    from harness.spec import Recipe

INTRA_EPOCH_POINTS = 5  # samples of the running loss/accuracy inside epoch 0


@dataclass
class PhaseHooks:
    """Extension points a pruning method uses without leaving the training step.

    ``penalty(progress)`` returns an extra loss term (a tensor) at training progress in [0, 1];
    ``after_step()`` runs after each optimiser step (e.g. re-applying masks).
    """

    penalty: Optional[Callable[[float], torch.Tensor]] = None
    after_step: Optional[Callable[[], None]] = None


@dataclass
class PhaseResult:
    epochs: list = field(default_factory=list)        # list[EpochRecord]
    first_batch_loss: float = float("nan")
    first_batch_accuracy: float = float("nan")
    intra_epoch: list = field(default_factory=list)   # (step, steps, running loss, running acc %)
    test_n: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    images_per_s: float = 0.0
    peak_memory_mb: Optional[float] = None
    epoch_train_seconds: list = field(default_factory=list)  # per epoch, training only (synchronised)


def autocast_for(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_forward(model: nn.Module, device: torch.device, compile: bool = True,
                     mode: Optional[str] = None) -> Callable:
    """The forward the training step calls: ``torch.compile(model)`` on CUDA when ``compile`` is
    on (the default), the eager model otherwise (CPU, or ``--no-compile``). ``mode`` is
    torch.compile's (None: its default; the benchmark tries others).

    The compiled module shares the model's parameters. Shapes are static (training batches are
    all full), so the step compiles once.
    """
    return _compiled(model, device, compile, mode)


def evaluation_forward(model: nn.Module, device: torch.device, compile: bool = True,
                       mode: Optional[str] = None) -> Callable:
    """The forward :func:`evaluate` calls, compiled (or not) as :func:`training_forward`. The
    compiled graph is cached with the model's code, so one made per phase is compiled once per
    run and reused by every epoch and state; :func:`evaluate` pads a short last batch to the
    full batch size, so one static shape serves every batch."""
    return _compiled(model, device, compile, mode)


# Training and evaluation of each model shape are separate entries in the compile cache of the
# models' shared forward code; a session that trains several models could pass torch's default
# limit (8), past which torch runs the forward eagerly without failing. Raised to this bound.
COMPILE_CACHE_ENTRIES = 64


def _compiled(model: nn.Module, device: torch.device, compile: bool, mode: Optional[str]) -> Callable:
    if not (compile and device.type == "cuda"):
        return model
    import torch._dynamo

    config = torch._dynamo.config
    config.cache_size_limit = max(config.cache_size_limit, COMPILE_CACHE_ENTRIES)
    return torch.compile(model, dynamic=False, mode=mode)


def is_compiled(forward: Callable) -> bool:
    """Whether ``forward`` is a ``torch.compile``d module (not the eager model, not a DDP wrapper).
    Only a process that compiled something has imported dynamo; the others never pay for it."""
    dynamo = sys.modules.get("torch._dynamo")
    return dynamo is not None and isinstance(forward, dynamo.eval_frame.OptimizedModule)


def uses_fused_attention(model: nn.Module) -> bool:
    """Whether every timm attention block of ``model`` calls fused SDPA (False if it has none)."""
    flags = [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
    return bool(flags) and all(flags)


OPTIMIZERS: dict[str, Callable[[list, Recipe, dict], torch.optim.Optimizer]] = {
    "sgd": lambda groups, r, fused: torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, **fused),
    "adamw": lambda groups, r, fused: torch.optim.AdamW(groups, lr=r.lr, **fused),
}


def make_optimizer(model: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    """The recipe's optimiser (:data:`OPTIMIZERS`): weight decay on matrices only, fused on CUDA."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}
    return OPTIMIZERS[recipe.optimizer](groups, recipe, fused)


# After the warm-up, the lr multiplier at (recipe, epoch, progress through the rest in [0, 1)).
LR_SCHEDULES: dict[str, Callable[[Recipe, int, float], float]] = {
    "constant": lambda r, epoch, progress: 1.0,
    "step": lambda r, epoch, progress: 0.1 ** sum(epoch >= m for m in r.milestones),
    "cosine": lambda r, epoch, progress: 0.5 * (1 + math.cos(math.pi * progress)),
}


def lr_factor(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at optimiser step ``step`` (linear warmup, then the schedule)."""
    total = recipe.epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return LR_SCHEDULES[recipe.schedule](recipe, step // steps_per_epoch, progress)


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Batches, forward: Optional[Callable] = None) -> tuple[int, int]:
    """(correct, n) on every sample of ``batches``, through ``forward`` (default: the eager
    model). A compiled ``forward`` (:func:`evaluation_forward`) sees every batch at one shape and
    layout (:func:`_static`), so its graph is compiled once; the count stays exact."""
    was_training = model.training
    model.eval()
    run = model if forward is None else forward
    static = is_compiled(run)
    correct = torch.zeros((), dtype=torch.int64, device=batches.device)
    with autocast_for(batches.device):
        for x, y in batches:
            if static:
                x, y = _static(x, y, batches.batch_size)
            correct += (run(x).argmax(1) == y).sum()
    model.train(was_training)
    return int(correct.item()), len(batches.labels)


def _static(x: torch.Tensor, y: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` copied into ``size`` rows of contiguous memory: a short batch is padded
    with zero images labelled -1, which no prediction matches. (torch.compile guards on the
    strides too, and a batch's strides vary where a dimension has size 1.)"""
    images = x.new_zeros((size, *x.shape[1:]))
    images[:len(y)] = x
    labels = y.new_full((size,), -1)
    labels[:len(y)] = y
    return images, labels


def train_phase(model: nn.Module, train: Batches, test: Batches, recipe: Recipe, *,
                hooks: PhaseHooks = PhaseHooks(), progress: Optional[Callable] = None,
                step_fn: Optional[Callable] = None, validation: Optional[Batches] = None,
                eval_fn: Optional[Callable] = None, stop_after: Optional[int] = None) -> PhaseResult:
    """Train ``model`` for ``recipe.epochs`` and evaluate on ``test`` (and on ``validation``, when
    given) after each epoch, through ``eval_fn``: by default compiled where the training
    ``step_fn`` is (:func:`evaluation_forward`), the eager model otherwise. ``stop_after=N``
    trains only the first N epochs of that schedule (the lr still follows ``recipe.epochs``)."""
    if stop_after is not None and not 1 <= stop_after <= recipe.epochs:
        raise ValueError(f"stop_after must be in [1, recipe.epochs={recipe.epochs}], got {stop_after!r}")
    epochs = recipe.epochs if stop_after is None else stop_after
    device = train.device
    phase = _Phase(model, train, recipe, hooks, progress, step_fn)
    if eval_fn is None:
        eval_fn = evaluation_forward(model, device, compile=is_compiled(step_fn))
    result = PhaseResult()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        tally = phase.run_epoch(epoch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result.epoch_train_seconds.append(time.perf_counter() - t0)
        test_correct, test_n = evaluate(model, test, eval_fn)
        val = evaluate(model, validation, eval_fn) if validation is not None else (None, None)
        if epoch == 0:
            tally.describe_first_epoch(result)
        result.epochs.append(phase.epoch_record(epoch, tally, (test_correct, test_n), val,
                                                time.perf_counter() - t0))
        result.test_n = test_n
    result.seconds = time.perf_counter() - start
    result.train_seconds = sum(result.epoch_train_seconds)
    result.images_per_s = epochs * phase.steps * train.batch_size / max(result.train_seconds, 1e-9)
    if device.type == "cuda":
        result.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
    return result


@dataclass
class _Tally:
    """One epoch's running sums, kept on the device (read once, after the epoch)."""

    loss: torch.Tensor
    correct: torch.Tensor
    penalty: torch.Tensor
    intra: list = field(default_factory=list)    # (step, steps, loss sum, correct, seen)
    first: Optional[tuple] = None                  # (loss, hits, batch size) of the first batch

    def describe_first_epoch(self, result: PhaseResult) -> None:
        loss, hits, size = self.first
        result.first_batch_loss = float(loss)
        result.first_batch_accuracy = 100.0 * int(hits) / size
        result.intra_epoch = [(s, n, float(ls) / k, 100.0 * int(c) / k) for s, n, ls, c, k in self.intra]


class _Phase:
    """The optimiser, schedule and loss of one phase, and its training step."""

    def __init__(self, model: nn.Module, train: Batches, recipe: Recipe, hooks: PhaseHooks,
                 progress: Optional[Callable], step_fn: Optional[Callable]) -> None:
        self.model, self.train, self.recipe, self.hooks, self.progress = model, train, recipe, hooks, progress
        self.device = train.device
        self.optimizer = make_optimizer(model, recipe, self.device)
        self.steps = len(train)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(recipe, s, self.steps))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.forward = step_fn if step_fn is not None else model

    def run_epoch(self, epoch: int) -> _Tally:
        device = self.device
        tally = _Tally(torch.zeros((), device=device), torch.zeros((), dtype=torch.int64, device=device),
                       torch.zeros((), device=device))
        marks = _marks(self.steps) if epoch == 0 else set()
        for i, (x, y) in enumerate(self.train):
            loss, hit = self._step(x, y, (epoch * self.steps + i) / (self.recipe.epochs * self.steps), tally)
            tally.loss += loss * len(y)
            tally.correct += hit
            if epoch == 0 and i == 0:
                tally.first = (loss.clone(), hit.clone(), len(y))
            if i in marks:
                tally.intra.append((i, self.steps, tally.loss.clone(), tally.correct.clone(), (i + 1) * len(y)))
            if self.progress is not None:
                self.progress(len(y))
        return tally

    def _step(self, x: torch.Tensor, y: torch.Tensor, progress: float, tally: _Tally) -> tuple:
        """One optimiser step; returns the batch's loss and hits (device tensors, detached)."""
        with autocast_for(self.device):
            logits = self.forward(x)
            loss = self.criterion(logits.float(), y)
        total = loss
        if self.hooks.penalty is not None:
            pen = self.hooks.penalty(progress)
            tally.penalty += pen.detach()
            total = loss + pen
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.recipe.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.hooks.after_step is not None:
            self.hooks.after_step()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def epoch_record(self, epoch: int, tally: _Tally, test: tuple, val: tuple, seconds: float) -> EpochRecord:
        seen = self.steps * self.train.batch_size
        (test_correct, test_n), (val_correct, val_n) = test, val
        return EpochRecord(
            epoch=epoch, train_loss=float(tally.loss) / seen, train_accuracy=100.0 * int(tally.correct) / seen,
            test_accuracy=100.0 * test_correct / test_n, test_correct=test_correct, test_n=test_n,
            lr=self.optimizer.param_groups[0]["lr"], seconds=seconds,
            penalty=float(tally.penalty) / self.steps if self.hooks.penalty is not None else None,
            val_accuracy=100.0 * val_correct / val_n if val_n else None, val_correct=val_correct,
            val_n=val_n)


def _marks(steps: int) -> set:
    """Steps of epoch 0 at which the running loss/accuracy is sampled (always the first and last)."""
    return {round(k * (steps - 1) / (INTRA_EPOCH_POINTS - 1)) for k in range(INTRA_EPOCH_POINTS)}
