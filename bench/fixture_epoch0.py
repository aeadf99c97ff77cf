"""How much a random init learns in its first epoch on the gratings CIFAR-10 fixture: the figure
the ``pretrained_start`` check compares with its floor (50% on CIFAR-10), measured through the
harness's own training path (the nightly CIFAR-10 baseline recipe, stopped after epoch 0 of its
schedule) so that the fixture is known to leave a random init below the floor.

    python -m bench.fixture_epoch0 [--patterns 40,41,...] [--batch-size 512] [--device cuda]
        [--per-class-train 500 --per-class-test 100] [--out FILE.json]

``--patterns`` picks the CIFAR-100 gratings the ten classes show (default: the fixture's own,
``fixtures.cifar.GRATING_CIFAR10``). On this 2-core CPU a ViT-S/16 at 224 took 32 minutes for
5,000 images on one thread and 17 on two; ``--batch-size`` below the recipe's 512 fits the CPU's
memory but gives more steps, so a random init learns more than the recipe would let it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from fixtures.cifar import GRATING_CIFAR10, build_cifar10
from harness import storage
from harness.data import load_dataset
from harness.environment import environment
from harness.models import create_model
from harness.runs import batches_for
from harness.train import train_phase, training_forward
from suites.profiles import NIGHTLY_RECIPE, cifar_baseline


def measure(args: argparse.Namespace, root: Path) -> dict:
    patterns = np.array(args.patterns)
    build_cifar10(root, args.per_class_train, args.per_class_test, seed=0, style="gratings",
                  patterns=patterns)
    spec = cifar_baseline("cifar10", replace(NIGHTLY_RECIPE, batch_size=args.batch_size))
    dataset = load_dataset("cifar10", root)
    device = torch.device(args.device)
    torch.manual_seed(spec.seed)
    model = create_model(spec.model, dataset.num_classes, dataset.channels, spec.image_size).to(device)
    train, test = batches_for(spec, dataset, device)
    start = time.perf_counter()
    phase = train_phase(model, train, test, spec.recipe, stop_after=1,
                        step_fn=training_forward(model, device))
    first = phase.epochs[0]
    return {"patterns": patterns.tolist(), "batch_size": args.batch_size, "steps": len(train),
            "train_images": len(dataset.train), "epoch0_test_correct": first.test_correct,
            "epoch0_test_n": first.test_n, "epoch0_test_accuracy": round(first.test_accuracy, 2),
            "seconds": round(time.perf_counter() - start, 1), "spec": spec.to_dict(),
            "environment": environment(device)}


def _patterns(text: str) -> list:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 10 comma-separated integers, got {text!r}") from None


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patterns", type=_patterns,
                   default=GRATING_CIFAR10.tolist(), help="10 CIFAR-100 gratings classes, comma-separated")
    p.add_argument("--batch-size", type=int, default=NIGHTLY_RECIPE.batch_size)
    p.add_argument("--per-class-train", type=int, default=500)
    p.add_argument("--per-class-test", type=int, default=100)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="fixture_epoch0_") as root:
        try:
            result = measure(args, Path(root))
        except ValueError as exc:
            print(f"bench.fixture_epoch0: {exc}", file=sys.stderr)
            return 2
    print(f"random init after epoch 0 on gratings CIFAR-10 {result['patterns']}: "
          f"{result['epoch0_test_accuracy']:.2f}% ({result['epoch0_test_correct']}/{result['epoch0_test_n']}; "
          f"{result['steps']} steps of {result['batch_size']}; {result['seconds']:.0f} s)")
    if args.out:
        storage.write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
