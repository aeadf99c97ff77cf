"""The demonstration set of suites/checkpoints: real checkpoint files, built from a real run.

The smoke ViT is trained on scikit-learn's digits by the harness engine (the same stored run as
suites/baseline's, so it trains once per reports folder); the other files derive from it and
from its own random init:

====================================  =================  ==========================================
file                                  verdict            what it demonstrates
====================================  =================  ==========================================
digits_vit_pretrained.safetensors     trained            a genuinely trained model (metadata claim)
vit_tiny_digits_pretrained_init.pth   random-init        the seed's bug: a fresh init named pretrained
  .tar
digits_vit_pretrained_finetune_       finetune-init      trained backbone, fresh 10-class head, in a
  init.pth                                               DataParallel container (``module.``)
digits_vit_pretrained_half.pth        partially-trained  blocks 0-1 trained, blocks 2-3 at init
digits_vit_pretrained_nan.pth         non-finite         one NaN in blocks.2.attn.qkv.weight
digits_vit_pretrained_truncated.pth   unreadable         the trained file cut in half
digits_vit_pretrained_code.pth        unsafe             a pickle that would call os.system
====================================  =================  ==========================================

The code-running pickle's command would create :func:`sentinel_path`; that file must never exist.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from harness import storage
from harness.models import create_model
from harness.runs import RunContext, get_or_run
from harness.suite import CheckpointFile
from ..profiles import SMOKE_BASELINE

ARCH = SMOKE_BASELINE.model
SENTINEL = "CODE_RAN.txt"


@dataclass(frozen=True)
class Demo:
    file: str
    verdict: str            # what the harness must find
    mislabeled: bool        # claims pretrained but is not: the catch a user would see fail
    description: str

    def case(self) -> CheckpointFile:
        return CheckpointFile(path=self.file, name=self.file, demo=self.file)


DEMOS = (
    Demo("digits_vit_pretrained.safetensors", "trained", False,
         "the smoke ViT after training on digits"),
    Demo("vit_tiny_digits_pretrained_init.pth.tar", "random-init", True,
         "its random init saved under a 'pretrained' name (the seed's bug)"),
    Demo("digits_vit_pretrained_finetune_init.pth", "finetune-init", False,
         "trained backbone with a fresh head, DataParallel container"),
    Demo("digits_vit_pretrained_half.pth", "partially-trained", True,
         "blocks 0-1 trained, blocks 2-3 at their init"),
    Demo("digits_vit_pretrained_nan.pth", "non-finite", True, "one NaN weight"),
    Demo("digits_vit_pretrained_truncated.pth", "unreadable", True, "the file cut in half"),
    Demo("digits_vit_pretrained_code.pth", "unsafe", True, "a pickle that would call os.system"),
)
BY_FILE = {d.file: d for d in DEMOS}


class RunsCode:
    """Pickles as a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def sentinel_path(folder: Path) -> Path:
    return Path(folder) / SENTINEL


def trained_state(context: RunContext) -> tuple[dict, str]:
    """The smoke baseline's State 0 weights (trained by the engine, or reused from the store)."""
    from safetensors.torch import load_file

    record = get_or_run(SMOKE_BASELINE, context)
    path = record.state(0).checkpoint
    return load_file(path, device="cpu"), record.run_id


def fresh_state(seed: int, num_classes: int = 10) -> dict:
    """The architecture's init exactly as the engine makes it (seed, then create_model)."""
    torch.manual_seed(seed)
    return create_model(ARCH, num_classes=num_classes, in_chans=1).state_dict()


def build_demo(folder: Path, context: Optional[RunContext] = None) -> dict:
    """Write every demonstration file into ``folder``; returns file name -> path. ``context``
    says where the trained run is stored (default: a CPU run under ``folder``/reports)."""
    folder = Path(folder)
    context = context or RunContext(device=torch.device("cpu"), reports_dir=folder / "reports",
                                    progress=False)
    trained, run_id = trained_state(context)
    init = fresh_state(SMOKE_BASELINE.seed)
    head = fresh_state(seed=1)
    files = {}

    def put(name: str, write) -> None:
        files[name] = folder / name
        write(files[name])

    put(DEMOS[0].file, lambda p: storage.save_tensors(
        p, trained, {"pretrained": "true", "run_id": run_id, "arch": ARCH}))
    put(DEMOS[1].file, lambda p: storage.save_torch(p, {"state_dict": init, "arch": ARCH}))
    finetune = {k: head[k].clone() if k.startswith("head.") else v for k, v in trained.items()}
    put(DEMOS[2].file, lambda p: storage.save_torch(
        p, {"model": {f"module.{k}": v for k, v in finetune.items()}, "epoch": 0}))
    half = {k: trained[k] if not _late_block(k) else init[k] for k in trained}
    put(DEMOS[3].file, lambda p: storage.save_torch(p, {"state_dict": half}))
    nan = {k: v.clone() for k, v in trained.items()}
    nan["blocks.2.attn.qkv.weight"][3, 5] = float("nan")
    put(DEMOS[4].file, lambda p: storage.save_torch(p, nan))
    put(DEMOS[5].file, lambda p: _truncated(p, trained))
    put(DEMOS[6].file, lambda p: storage.save_torch(
        p, {"state_dict": trained, "hook": RunsCode(f"touch {sentinel_path(folder)}")}))
    return files


def _late_block(key: str) -> bool:
    return key.startswith(("blocks.2.", "blocks.3."))


def _truncated(path: Path, tensors: dict) -> None:
    storage.save_torch(path, {"state_dict": tensors})
    data = path.read_bytes()
    storage.write_bytes(path, data[: len(data) // 2])


def demo_cases() -> list:
    return [d.case() for d in DEMOS]


def expected(file: str) -> Optional[Demo]:
    return BY_FILE.get(file)
