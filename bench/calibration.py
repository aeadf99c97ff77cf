"""Calibration of the ``pretrained_start`` floors on the real CIFAR-10: the test accuracy after
epoch 0 of each CIFAR profile's recipe, for a random init and for an init whose backbone learned
real images elsewhere (CIFAR-10's classes 0-4; :mod:`fixtures.transfer_init`), over several
seeds, through the harness's own training path (``train_phase(stop_after=1)``: epoch 0 of the
recipe's own schedule).

    python -m bench.calibration --data-root ROOT [--seeds 0,1,2] [--threads 1]
        [--out bench/results/cifar10_calibration_cpu.json]

Rows are written to ``--out`` as they finish and a rerun skips the rows already there, so a
killed run resumes. The model is ``vit_micro_patch4_32`` (the ViT a 2-core CPU trains through a
whole CIFAR-10 epoch in minutes); the profiles' ViT-S/16 and ViT-S/4 take hours per epoch on
such a CPU and are measured by the GPU check (bench/gpu_check.sh). Tasks: ``cifar10`` (all ten
classes, 50,000 training images) and ``cifar10[5-9]`` (dog, frog, horse, ship, truck, 25,000
images; the trained backbone never saw them). Seeds change the init (random rows), the head's
data order and the augmentation; the trained init's file is the same for every seed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from fixtures import transfer_init
from harness import storage
from harness.checkpoint.loading import load_init
from harness.data import load_dataset
from harness.environment import environment
from harness.models import create_model
from harness.runs import RunContext, batches_for
from harness.spec import RunSpec
from harness.train import train_phase, training_forward
from suites.profiles import FULL_RECIPE, NIGHTLY_RECIPE, REFERENCE_RECIPE

RECIPES = {"nightly": NIGHTLY_RECIPE, "full": FULL_RECIPE, "reference": REFERENCE_RECIPE,
           "seed-cpu": transfer_init.SEED_RECIPE}
# (task, init, recipe) in the order they run: the transfer pair first, then the ten-class rows;
# "seed" is the CPU seed scenario's pair (examples/real_cifar), measured on its own data root.
ROWS = {"profiles": [("cifar10[5-9]", "random", "nightly"), ("cifar10[5-9]", "trained", "nightly"),
                     ("cifar10", "random", "nightly"), ("cifar10", "trained", "nightly"),
                     ("cifar10", "random", "full"), ("cifar10", "random", "reference")],
        "seed": [("cifar10[5-9]", "random", "seed-cpu"), ("cifar10[5-9]", "trained", "seed-cpu")]}
BACKBONES = {"profiles": {"epochs": 8, "lr": 2e-3},   # on all 25,000 images of classes 0-4
             "seed": {"epochs": transfer_init.PRETRAIN_EPOCHS, "lr": transfer_init.PRETRAIN_LR}}


def _task(name: str, data_root: Path):
    return transfer_init.classes_5_9(data_root) if name == "cifar10[5-9]" else load_dataset("cifar10", data_root)


def epoch0(dataset, recipe_name: str, init: Optional[Path], seed: int) -> dict:
    """Epoch 0 of ``recipe_name`` on ``dataset`` from ``init`` (None: random), on the CPU."""
    spec = RunSpec(model=transfer_init.ARCH, dataset="cifar10", recipe=RECIPES[recipe_name], seed=seed)
    device = torch.device("cpu")
    torch.manual_seed(seed)
    model = create_model(spec.model, dataset.num_classes, dataset.channels, 32)
    if init is not None:
        load_init(model, str(init))
    train, test = batches_for(spec, dataset, device)
    start = time.perf_counter()
    phase = train_phase(model, train, test, spec.recipe, stop_after=1,
                        step_fn=training_forward(model, device, compile=False))
    first = phase.epochs[0]
    return {"seed": seed, "steps": len(train), "batch_size": spec.recipe.batch_size,
            "test_correct": first.test_correct, "test_n": first.test_n,
            "accuracy": round(first.test_accuracy, 2),
            "first_batch_loss": round(phase.first_batch_loss, 4), "seconds": round(time.perf_counter() - start, 1)}


def summarise(row: dict) -> dict:
    accs = [r["accuracy"] for r in row["seeds"]]
    return {**row, "mean": round(statistics.fmean(accs), 2), "min": min(accs), "max": max(accs)}


def table(rows: list) -> str:
    head = ("| task | init | recipe | steps in epoch 0 | seeds | epoch-0 accuracy mean | range |\n"
            "|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['task']} | {r['init']} | {r['recipe']} (batch {r['seeds'][0]['batch_size']}) | "
        f"{r['seeds'][0]['steps']} | {len(r['seeds'])} | {r['mean']:.2f}% | "
        f"{r['min']:.2f}-{r['max']:.2f}% |\n" for r in rows)


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, required=True, help="the real CIFAR-10 (harness fetch-cifar10)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: OpenMP "
                   "threads collapse on a shared 2-core machine)")
    p.add_argument("--work", type=Path, default=Path("reports/calibration"),
                   help="the backbone's run store and the init files (default reports/calibration)")
    p.add_argument("--rows", choices=tuple(ROWS), default="profiles",
                   help="profiles: the CIFAR profiles' recipes; seed: the CPU seed scenario's")
    p.add_argument("--out", type=Path, default=Path("bench/results/cifar10_calibration_cpu.json"))
    return p.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    done = storage.read_json(args.out) if args.out.is_file() else {}
    context = RunContext(device=torch.device("cpu"), reports_dir=args.work, data_root=args.data_root,
                         threads=args.threads, progress=False)
    inits = transfer_init.build_inits(args.work / "inits", context, **BACKBONES[args.rows])
    print(f"trained backbone: run {inits['backbone_run']}, {inits['backbone_epochs']} epochs, "
          f"{inits['backbone_test_accuracy_classes_0_4']}% on classes 0-4", flush=True)
    rows = [r for r in done.get("rows", []) if len(r["seeds"]) == len(seeds)]
    for task, init, recipe in ROWS[args.rows]:
        if any((r["task"], r["init"], r["recipe"]) == (task, init, recipe) for r in rows):
            continue
        dataset = _task(task, args.data_root)
        runs = [epoch0(dataset, recipe, inits["trained"] if init == "trained" else None, s) for s in seeds]
        rows.append(summarise({"task": task, "init": init, "recipe": recipe, "seeds": runs,
                               "train_images": len(dataset.train), "test_images": len(dataset.test)}))
        print(f"{task} {init} {recipe}: {[r['accuracy'] for r in runs]}", flush=True)
        storage.write_json(args.out, _result(rows, inits, dataset, args))
    print(table(rows))
    return 0


def _result(rows: list, inits: dict, dataset, args) -> dict:
    return {"model": transfer_init.ARCH, "data": dataset.source.split(";")[0],
            "backbone": {**{k: str(v) for k, v in inits.items() if k not in ("random", "trained")},
                         "recipe": {**transfer_init.PRETRAIN_RECIPE.__dict__, **BACKBONES[args.rows]},
                         "dataset": "CIFAR-10 classes 0-4 of the same data root"},
            "recipes": {n: r.__dict__ for n, r in RECIPES.items()}, "threads": args.threads,
            "command": "python -m bench.calibration " + " ".join(sys.argv[1:]),
            "rows": rows, "environment": environment(torch.device("cpu"))}


if __name__ == "__main__":
    sys.exit(main())
