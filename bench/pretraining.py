"""Init files for the GPU check: a genuinely trained one, pre-trained on one task through the
harness's own training path (``runs.batches_for``, ``train.training_forward``, ``train_phase``:
compiled and bf16 on CUDA), and an untrained one, as a script that writes a fresh model where a
pretrained file should be would leave it. Both are safetensors state dicts written atomically;
their metadata says how they were made without claiming anything, so the harness judges them by
their weights (and their file name) alone.

    python -m bench.pretraining OUT.safetensors --model vit_small_patch16_224 --dataset cifar100 \\
        --data-root DIR --image-size 224 --epochs 15 --summary OUT.json
    python -m bench.pretraining OUT.safetensors --model vit_small_patch16_224 --random --num-classes 1000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from harness import storage
from harness.data import DataError, load_dataset
from harness.data.batches import AUGMENTS
from harness.environment import device_name, environment
from harness.models import ModelError, create_model, native_image_size
from harness.runs import batches_for
from harness.spec import Recipe, RunSpec
from harness.threads import cpu_threads
from harness.train import train_phase, training_forward


def pretrain_spec(args: argparse.Namespace) -> RunSpec:
    """The pre-training run: AdamW with warm-up and cosine decay, label smoothing, the chosen
    augmentation (crop and flip by default)."""
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer="adamw",
                    weight_decay=0.05, warmup_epochs=1 if args.epochs > 1 else 0, label_smoothing=0.1,
                    augment=args.augment, crop_padding=4, eval_batch_size=1024, grad_clip=1.0)
    return RunSpec(model=args.model, dataset=args.dataset, recipe=recipe, image_size=args.image_size,
                   seed=args.seed, label=f"pre-training on {args.dataset}")


def pretrain(args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    spec = pretrain_spec(args)
    dataset = load_dataset(spec.dataset, args.data_root)
    torch.manual_seed(spec.seed)
    size = spec.image_size or native_image_size(spec.model) or dataset.image_size
    model = create_model(spec.model, dataset.num_classes, dataset.channels, size).to(args.device)
    train, test = batches_for(spec, dataset, args.device)
    phase = train_phase(model, train, test, spec.recipe, step_fn=training_forward(model, args.device))
    accuracies = [round(e.test_accuracy, 2) for e in phase.epochs]
    return model, {"kind": "trained", "spec": spec.to_dict(), "dataset_source": dataset.source,
                   "num_classes": dataset.num_classes, "train_images": len(dataset.train),
                   "test_images": len(dataset.test), "test_accuracy_per_epoch": accuracies,
                   "final_test_accuracy": accuracies[-1], "train_seconds": round(phase.train_seconds, 2),
                   "seconds": round(phase.seconds, 2), "images_per_s": round(phase.images_per_s, 1),
                   "peak_memory_mb": phase.peak_memory_mb}


def untrained(args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(args.seed)
    model = create_model(args.model, args.num_classes, args.in_chans)
    return model, {"kind": "untrained", "model": args.model, "num_classes": args.num_classes,
                   "seed": args.seed}


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the safetensors file to write")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", help="the pre-training task (a harness dataset name)")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--augment", choices=tuple(AUGMENTS), default="crop_flip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads on a CPU")
    p.add_argument("--random", action="store_true", help="write the untrained model instead")
    p.add_argument("--num-classes", type=int, default=1000, help="with --random: the head's classes")
    p.add_argument("--in-chans", type=int, default=3, help="with --random: the input channels")
    p.add_argument("--summary", type=Path, default=None, help="write how the file was made here (JSON)")
    args = p.parse_args(argv)
    if not args.random and not args.dataset:
        p.error("--dataset: name the pre-training task (or pass --random for an untrained file)")
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    from bench.throughput import device_option

    args.device = device_option(args.device, p)
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        with cpu_threads(args.threads if args.device.type == "cpu" else None):
            model, summary = untrained(args) if args.random else pretrain(args)
    except (DataError, ModelError) as exc:
        print(f"bench.pretraining: {exc}", file=sys.stderr)
        return 2
    metadata = {"made_by": "bench/pretraining.py", "kind": summary["kind"], "model": args.model,
                "device": device_name(args.device)}
    storage.save_tensors(args.out, model.state_dict(), metadata)
    summary.update({"file": str(args.out), "wall_seconds": round(time.perf_counter() - t0, 2),
                    "device_name": device_name(args.device), "environment": environment(args.device)})
    if args.summary is not None:
        storage.write_json(args.summary, summary)
    accuracy = summary.get("final_test_accuracy")
    print(f"wrote {args.out}: {summary['kind']} {args.model}"
          + (f", test accuracy per epoch {summary['test_accuracy_per_epoch']}" if accuracy is not None else "")
          + f" ({summary['wall_seconds']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
