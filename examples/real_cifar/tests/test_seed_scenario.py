"""The research group's mistake on the real CIFAR-10, caught on a CPU: two init files that both
claim a pretrained start, judged side by side on CIFAR-10's classes 5-9.

- ``random_init``: ``init_model/vit_micro_cifar10_pretrained_init.pth.tar``, a fresh model written
  to a "pretrained" path (what the group's script did when the file did not exist);
- ``backbone_init``: ``init_model/vit_micro_classes0-4_backbone_init.pth.tar``, a backbone trained
  on classes 0-4 with a fresh head (an honest transfer start).

Each is judged from its weights (forensics) and from its first epoch (the pretrained-start floor).
The floor comes from bench/results/cifar10_calibration_seed_cpu.json (``python -m
bench.calibration --rows seed``, on a ``harness fetch-cifar10 DIR --batches 1`` root): through this
recipe a random init reached 39.26-41.88% after epoch 0 and the trained backbone 54.04-54.88% (3
seeds each); the floor sits between them, 5.1 pp above the random maximum and 7.0 pp below the
trained minimum.
"""
from pathlib import Path

import pytest

from harness.forensics.inspection import claim_verdict, inspect_checkpoint
from harness.start import epoch_zero, start_evidence
from harness.suite import Bar, Case, Recipe, RunSpec

INITS = Path(__file__).resolve().parents[1] / "init_model"
FILES = {"random_init": "vit_micro_cifar10_pretrained_init.pth.tar",
         "backbone_init": "vit_micro_classes0-4_backbone_init.pth.tar"}
# the nightly profile's recipe (SGD, lr 0.03 after a one-epoch warm-up) at a CPU's batch size
RECIPE = Recipe(epochs=2, batch_size=64, lr=0.03, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                warmup_epochs=1, augment="crop_flip", crop_padding=4, eval_batch_size=1000, grad_clip=1.0)
FLOOR = 47.0

SUITE = "seed"
HARNESS_CASES = [Case(name, RunSpec(model="vit_micro_patch4_32", dataset="cifar_tasks:classes_5_9",
                                    recipe=RECIPE, seed=0, init=str(INITS / file),
                                    label=f"CIFAR-10 classes 5-9 from {name}"))
                 for name, file in FILES.items()]
HARNESS_BARS = [Bar(f"seed/{name}/state0/pretrained_start", f"Pretrained start of {name} on CIFAR-10 "
                    f"classes 5-9 (test accuracy after epoch 0)", ">=", FLOOR, "%") for name in FILES]


def _init_file(case) -> Path:
    path = Path(case.spec.init)
    if not path.is_file():
        pytest.fail(f"{path} is missing: write both init files with `python -m fixtures.transfer_init "
                    f"DATA_ROOT {INITS}` in the harness checkout", pytrace=False)
    return path


def test_init_not_random(harness, case):
    result = inspect_checkpoint(_init_file(case), claim="the init of a run")
    harness.record(claim_verdict(result, f"seed/{case.name}/init/pretrained"))


def test_pretrained_start(harness, case):
    _init_file(case)
    record = harness.run(case)
    state = record.state(0)
    first = epoch_zero(state)
    verdict_id = f"seed/{case.name}/state0/pretrained_start"
    harness.check_epoch(verdict_id, first, start_evidence(record, state, first, harness.bar(verdict_id)))
