"""Training throughput: the harness's own loop against a reference-style loop, in one run.

    PYTHONPATH=. python bench/throughput.py                 # CUDA: ViT-S/4 @32 and ViT-S/16 @224
    PYTHONPATH=. python bench/throughput.py --quick         # small sizes (on CPU: the smoke model)
    options: --out FILE.json  --cases NAME[,NAME]  --data-root DIR  --no-compile  --threads N  --check

Per case it measures
  (a) a loop in the research group's style: fp32, eager, batch 128, SGD, explicit softmax attention
      (timm's non-fused path), ``.item()`` of loss and accuracy after every step. Its data are
      device-resident, pre-normalised float batches (the cheapest possible data path, so the
      ratio is a lower bound);
  (b) the harness's own loop exactly as the engine runs it: ``runs.batches_for`` (device-resident
      uint8, on-device shuffling, crop/flip/normalise/resize per batch), ``train.training_forward``
      (torch.compile on CUDA) and ``train.train_phase`` (bf16 autocast, fused optimiser, metrics
      read once per epoch). Epoch 0 is the warm-up (compilation): it is reported separately and
      excluded; throughput is measured over the following epochs, each timed after a synchronise.
It also measures the device's bf16 matmul ceiling and counts training FLOPs per image with
``torch.utils.flop_counter`` (forward + backward) to give MFU, and estimates the time of the
research group's budget, 16 states x 60 epochs per method, from the measured epoch time. Prints a table and greppable
``throughput`` lines; with ``--out FILE.json`` writes JSON there (after every case, atomically),
and no file at all without it.
Without ``--data-root`` the CIFAR cases use random uint8 images of CIFAR-10's shape (50,000 train,
10,000 test): throughput does not depend on pixel values.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from harness import storage
from harness.data import Dataset, Split, load_dataset
from harness.data.batches import Batches
from harness.environment import device_name, environment
from harness.models import create_model
from suites.profiles import FULL_RECIPE, NIGHTLY_RECIPE, SMOKE_RECIPE
from harness.runs import batches_for
from harness.spec import Recipe, RunSpec
from harness.train import train_phase, training_forward, uses_fused_attention

STATES, EPOCHS = 16, 60   # the research group's budget (--pruning_times 16, --epochs 60), not their schedule


@dataclass(frozen=True)
class Bars:
    """What the issue asks of a case (None: no bar)."""

    min_img_per_s: Optional[float] = None
    min_ratio: Optional[float] = None
    max_epoch_seconds: Optional[float] = None
    max_schedule_minutes: Optional[float] = None


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
    rounds: int = 3                # timed rounds: one engine epoch, then reference steps
    bars: Bars = Bars()
    cuda_bars: bool = True          # bars apply on CUDA only (False: everywhere)

    def quick(self) -> "BenchCase":
        """Small sizes: a few batches per epoch, a few reference steps."""
        train_n = min(self.train_n or 10 ** 9, 4 * self.recipe.batch_size)
        return replace(self, train_n=train_n if self.dataset != "digits" else self.train_n,
                       test_n=min(self.test_n or 10 ** 9, 1024),
                       reference_steps=min(self.reference_steps, 24), reference_warmup=2)


CASES: dict[str, BenchCase] = {c.name: c for c in (
    BenchCase("vit_small_patch4_32", "vit_small_patch4_32", "cifar10",
              replace(FULL_RECIPE, batch_size=512), reference_steps=96,
              bars=Bars(min_img_per_s=20_000, min_ratio=6.0, max_epoch_seconds=2.5,
                        max_schedule_minutes=45)),
    BenchCase("vit_small_patch16_224", "vit_small_patch16_224", "cifar10",
              NIGHTLY_RECIPE, image_size=224, train_n=30 * 512, test_n=2048,
              reference_steps=20, rounds=2, bars=Bars(min_img_per_s=7_000)),
    BenchCase("smoke", "vit_tiny_digits", "digits",
              replace(SMOKE_RECIPE, batch_size=256), reference_steps=44, rounds=4,
              bars=Bars(min_ratio=1.0), cuda_bars=False),
)}
DEFAULT_CASES = {"cuda": ("vit_small_patch4_32", "vit_small_patch16_224"), "cpu": ("smoke",)}


# ---- data ------------------------------------------------------------------------------------
def bench_dataset(case: BenchCase, data_root: Optional[Path]) -> Dataset:
    if case.dataset != "digits" and data_root is None:
        dataset = _random_cifar_shaped()
    else:
        dataset = load_dataset(case.dataset, data_root)
    return replace(dataset, train=_head(dataset.train, case.train_n), test=_head(dataset.test, case.test_n))


def _random_cifar_shaped() -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g))

    return Dataset(name="cifar10", num_classes=10, train=split(50_000), test=split(10_000),
                   mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), flip=True,
                   source="random uint8 of CIFAR-10's shape (50,000 train / 10,000 test)")


def _head(split: Split, n: Optional[int]) -> Split:
    return split if n is None or n >= len(split) else Split(split.images[:n], split.labels[:n])


# ---- measurements ----------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_dtype(device: torch.device) -> torch.dtype:
    """The dtype the engine's matmuls run in: bf16 on CUDA (autocast), fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def matmul_ceiling(device: torch.device, n: int, iters: int) -> float:
    """Measured matmul FLOP/s of ``device`` in :func:`ceiling_dtype` (n x n by n x n)."""
    a = torch.randn(n, n, device=device, dtype=ceiling_dtype(device))
    b = torch.randn(n, n, device=device, dtype=ceiling_dtype(device))
    for _ in range(3):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    _sync(device)
    return 2 * n ** 3 * iters / (time.perf_counter() - t0)


def reference_model(case: BenchCase, dataset: Dataset, device: torch.device) -> nn.Module:
    """The case's model with timm's explicit attention (q @ k^T, softmax, @ v) instead of SDPA."""
    model = create_model(case.model, dataset.num_classes, dataset.channels)
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    return model.to(device)


def _input_size(case: BenchCase, dataset: Dataset) -> int:
    spec = RunSpec(model=case.model, dataset=case.dataset, recipe=case.recipe, image_size=case.image_size)
    train, _ = batches_for(spec, replace(dataset, train=_head(dataset.train, 1), test=_head(dataset.test, 1)),
                           torch.device("cpu"))
    return next(iter(train))[0].shape[-1]


def training_flops_per_image(case: BenchCase, dataset: Dataset, device: torch.device) -> float:
    """Forward + backward FLOPs of one image (counted on the explicit-attention model, so the
    attention matmuls are counted on every device; SDPA computes the same products)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = reference_model(case, dataset, device)
    size = _input_size(case, dataset)
    x = torch.randn(2, dataset.channels, size, size, device=device)
    y = torch.zeros(2, dtype=torch.int64, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 2


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
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self._step()
        _sync(self.device)
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
    size = _input_size(case, dataset)
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

    recipe, size = case.recipe, _input_size(case, dataset)
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


class EngineLoop:
    """The harness's own loop, as the engine runs a state: one ``train_phase`` epoch per round
    (train on ``batches_for``'s batches through ``training_forward``, then evaluate)."""

    def __init__(self, case: BenchCase, dataset: Dataset, device: torch.device, compile: bool) -> None:
        self.spec = RunSpec(model=case.model, dataset=case.dataset, image_size=case.image_size,
                            recipe=replace(case.recipe, epochs=1, warmup_epochs=0, milestones=()),
                            label=f"bench {case.name}")
        torch.manual_seed(self.spec.seed)
        self.model = create_model(case.model, dataset.num_classes, dataset.channels).to(device)
        self.train, self.test = batches_for(self.spec, dataset, device)
        self.step_fn = training_forward(self.model, device, compile)
        self.peak_memory_mb: Optional[float] = None
        self.last_loss = float("nan")

    def epoch(self) -> tuple[float, float]:
        """(train seconds, eval seconds) of one epoch of ``train_phase``."""
        phase = train_phase(self.model, self.train, self.test, self.spec.recipe, step_fn=self.step_fn)
        self.peak_memory_mb = phase.peak_memory_mb
        self.last_loss = phase.epochs[-1].train_loss
        train_s = phase.epoch_train_seconds[0]
        return train_s, phase.epochs[0].seconds - train_s


def measure(case: BenchCase, dataset: Dataset, device: torch.device, compile: bool, data: str,
            workers: int) -> tuple[dict, dict]:
    """Warm both loops up, then alternate rounds (one engine epoch, then reference steps) so that
    both see the same conditions; throughput = images / seconds summed over the timed rounds."""
    engine = EngineLoop(case, dataset, device, compile)
    reference = ReferenceLoop(case, dataset, device, data, workers)
    warm_train, _ = engine.epoch()
    ref_warm = reference.steps(case.reference_warmup)
    per_round = max(1, case.reference_steps // case.rounds)
    e_train, e_eval, r_time = [], [], []
    for _ in range(case.rounds):
        train_s, eval_s = engine.epoch()
        e_train.append(train_s)
        e_eval.append(eval_s)
        r_time.append(reference.steps(per_round))
    epoch_imgs = engine.train.samples_per_epoch
    steady = statistics.mean(e_train)
    eng = {"img_per_s": epoch_imgs * len(e_train) / sum(e_train), "epoch_train_seconds_measured": steady,
           "epoch_train_seconds_each": [round(t, 4) for t in e_train], "warmup_epoch_seconds": warm_train,
           "warmup_s": warm_train - steady, "eval_seconds_measured": statistics.mean(e_eval),
           "eval_img_per_s": len(engine.test.labels) * len(e_eval) / sum(e_eval),
           "train_images": len(engine.train.labels), "images_per_epoch": epoch_imgs,
           "test_images": len(engine.test.labels), "batch_size": engine.train.batch_size,
           "input_size": int(next(iter(engine.test))[0].shape[-1]), "epochs_timed": len(e_train),
           "compiled": engine.step_fn is not engine.model,
           "fused_attention": uses_fused_attention(engine.model),
           "peak_memory_mb": engine.peak_memory_mb, "final_train_loss": engine.last_loss,
           "recipe": asdict(engine.spec.recipe)}
    ref = {"img_per_s": per_round * reference.batch * len(r_time) / sum(r_time), "warmup_s": ref_warm,
           "batch_size": reference.batch, "steps_timed": per_round * len(r_time),
           "round_seconds_each": [round(t, 4) for t in r_time],
           "final_running_loss": reference.running_loss / max(1, reference.k),
           "data": data, "workers": workers}
    return eng, ref


def run_case(case: BenchCase, device: torch.device, args: argparse.Namespace, ceiling: float) -> dict:
    dataset = bench_dataset(case, args.data_root)
    full_train = 50_000 if case.dataset != "digits" else len(load_dataset("digits").train)
    full_test = 10_000 if case.dataset != "digits" else len(load_dataset("digits").test)
    flops = training_flops_per_image(case, dataset, device)
    engine, reference = measure(case, dataset, device, not args.no_compile, args.reference_data,
                                args.reference_workers)
    epoch_s = full_train / engine["img_per_s"]
    eval_s = full_test / engine["eval_img_per_s"]
    ref_epoch_s = full_train / reference["img_per_s"]
    result = {
        "case": case.name, "model": case.model, "data": dataset.source, "device": str(device),
        "reference_data": args.reference_data,
        "device_name": device_name(device),
        "engine_img_per_s": engine["img_per_s"], "reference_img_per_s": reference["img_per_s"],
        "ratio": engine["img_per_s"] / reference["img_per_s"],
        "mfu": engine["img_per_s"] * flops / ceiling, "reference_mfu": reference["img_per_s"] * flops / ceiling,
        "train_flops_per_image": flops, "epoch_seconds": epoch_s, "epoch_images": full_train,
        "eval_seconds": eval_s, "reference_epoch_seconds": ref_epoch_s,
        "warmup_compile_seconds": engine["warmup_s"], "reference_warmup_seconds": reference["warmup_s"],
        "schedule_minutes": _schedule_minutes(epoch_s + eval_s, engine["warmup_s"]),
        "schedule_minutes_warmup_every_state": _schedule_minutes(epoch_s + eval_s, engine["warmup_s"], STATES),
        "reference_schedule_minutes": _schedule_minutes(ref_epoch_s, reference["warmup_s"]),
        "peak_memory_mb": engine["peak_memory_mb"], "engine": engine, "reference": reference,
    }
    result["bars"] = _judge(case, result, device)
    return result


def _schedule_minutes(epoch_s: float, warmup_s: float, warmups: int = 1) -> float:
    """16 states x 60 epochs of ``epoch_s`` (train + eval), plus ``warmups`` warm-ups: one per run
    by default (the engine compiles its forward once per run and reuses it for every state)."""
    return (STATES * EPOCHS * epoch_s + warmups * max(warmup_s, 0.0)) / 60


def _judge(case: BenchCase, r: dict, device: torch.device) -> dict:
    if case.cuda_bars and device.type != "cuda":
        return {}
    b = case.bars
    checks = {"engine_img_per_s >=": (r["engine_img_per_s"], b.min_img_per_s, 1),
              "ratio >=": (r["ratio"], b.min_ratio, 1),
              "epoch_seconds <=": (r["epoch_seconds"], b.max_epoch_seconds, -1),
              "schedule_minutes <=": (r["schedule_minutes"], b.max_schedule_minutes, -1)}
    return {f"{k} {bar:g}": {"observed": obs, "bar": bar, "passed": (obs - bar) * sign >= 0}
            for k, (obs, bar, sign) in checks.items() if bar is not None}


# ---- output ----------------------------------------------------------------------------------
COLUMNS = (("case", "case", "{}"), ("engine img/s", "engine_img_per_s", "{:,.0f}"),
           ("reference img/s", "reference_img_per_s", "{:,.0f}"), ("ratio", "ratio", "{:.2f}x"),
           ("MFU", "mfu", "{:.1%}"), ("epoch s", "epoch_seconds", "{:.2f}"),
           ("eval s", "eval_seconds", "{:.2f}"), ("warm-up s", "warmup_compile_seconds", "{:.1f}"),
           ("16x60 min", "schedule_minutes", "{:.1f}"),
           ("(warm-up per state)", "schedule_minutes_warmup_every_state", "{:.1f}"),
           ("reference 16x60 min", "reference_schedule_minutes", "{:.1f}"),
           ("GPU MB", "peak_memory_mb", "{:,.0f}"))


def table(results: list[dict]) -> str:
    rows = [[name for name, _, _ in COLUMNS]]
    for r in results:
        rows.append(["-" if r.get(key) is None else fmt.format(r[key]) for _, key, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def metric_line(r: dict) -> str:
    keys = ("engine_img_per_s", "reference_img_per_s", "ratio", "mfu", "epoch_seconds",
            "warmup_compile_seconds", "schedule_minutes")
    return f"throughput case={r['case']} " + " ".join(f"{k}={r[k]:.4g}" for k in keys)


def document(device: torch.device, ceiling: float, args: argparse.Namespace, results: list[dict]) -> dict:
    doc = {"device": str(device), "device_name": device_name(device), "quick": args.quick,
           "compile": not args.no_compile, "matmul_ceiling_tflops": ceiling / 1e12,
           "matmul_ceiling_dtype": str(ceiling_dtype(device)).replace("torch.", ""),
           "float32_matmul_precision": torch.get_float32_matmul_precision(),
           "schedule": f"{STATES} states x {EPOCHS} epochs per method", "environment": environment(device),
           "cases": {r["case"]: r for r in results}}
    if results:  # the first case's figures at the top level (ViT-S/4 @32 on CUDA)
        doc.update({k: results[0][k] for k in ("engine_img_per_s", "reference_img_per_s", "ratio",
                                                "mfu", "epoch_seconds", "schedule_minutes")})
    return doc


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--cases", default=None, help=f"comma-separated, from {', '.join(CASES)} "
                   "(default: the ViT-S cases on CUDA, smoke on CPU)")
    p.add_argument("--quick", action="store_true", help="small sizes: 1 warm-up + 1 timed epoch")
    p.add_argument("--data-root", type=Path, default=None, help="real CIFAR-10 here (default: random uint8)")
    p.add_argument("--no-compile", action="store_true", help="engine without torch.compile")
    p.add_argument("--reference-data", choices=REFERENCE_DATA, default=None,
                   help="the reference loop's data: device (prepared once on the device; default on "
                        "CUDA, a conservative ratio) or loader (per-image torchvision transforms in a "
                        "DataLoader, the research group's style; default on CPU)")
    p.add_argument("--reference-workers", type=int, default=0, help="DataLoader workers of --reference-data loader")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None,
                   help="write the figures as JSON here (default: print only, write no file)")
    p.add_argument("--check", action="store_true", help="exit 1 when a case misses a bar")
    args = p.parse_args(argv)
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.reference_data = args.reference_data or ("device" if args.device.type == "cuda" else "loader")
    names = args.cases.split(",") if args.cases else DEFAULT_CASES[args.device.type]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is visible; use --device cpu")
    args.case_list = [CASES[n].quick() if args.quick else CASES[n] for n in names]
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    big = device.type == "cuda" and not args.quick
    ceiling = matmul_ceiling(device, 8192 if big else 512, 50 if big else 5)
    print(f"device {device_name(device)}: {ceiling_dtype(device)} matmul ceiling "
          f"{ceiling / 1e12:.3g} TFLOP/s", flush=True)
    results = []
    for case in args.case_list:
        t0 = time.perf_counter()
        results.append(run_case(case, device, args, ceiling))
        print(metric_line(results[-1]) + f" wall_s={time.perf_counter() - t0:.1f}", flush=True)
        if args.out is not None:
            storage.write_json(args.out, document(device, ceiling, args, results))
    print(table(results))
    missed = []
    for r in results:
        for name, check in r["bars"].items():
            print(f"{'PASS' if check['passed'] else 'FAIL'} {r['case']}: {name} (observed {check['observed']:.4g})")
            missed += [] if check["passed"] else [name]
    print(f"wrote {args.out}" if args.out is not None else "no --out given: no JSON written")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
