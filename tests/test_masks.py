"""Masks on a real timm ViT: which weights are prunable, and pruned weights stay exactly zero
through optimiser steps and in a saved checkpoint."""
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from harness import storage
from harness.data import load_dataset
from harness.data.batches import Batches
from harness.models import create_model
from harness.prune.magnitude import magnitude_masks
from harness.prune.masks import MaskSet, prunable_weights
from harness.spec import Recipe
from harness.threads import cpu_threads
from harness.train import PhaseHooks, train_phase

BLOCK_WEIGHTS = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight")
TINY = Recipe(epochs=1, batch_size=64, lr=3e-3, warmup_epochs=0, augment="none", eval_batch_size=512)


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_digits", 10, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread_module():
    """As the engine does on CPU (RunContext.threads): tiny models, shared cores."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    cpu = torch.device("cpu")
    return (Batches(ds.train, ds, batch_size=TINY.batch_size, device=cpu, train=True),
            Batches(ds.test, ds, batch_size=512, device=cpu, train=False))


def test_prunable_weights_are_the_block_linears_only(vit):
    names = [n for n, _ in prunable_weights(vit)]
    assert names == [f"blocks.{b}.{w}" for b in range(4) for w in BLOCK_WEIGHTS]
    assert "head.weight" in [n for n, _ in prunable_weights(vit, include_head=True)]


def _pruned_half(vit) -> MaskSet:
    masks = magnitude_masks(MaskSet.dense(vit), 0.5, "global")
    masks.apply()
    return masks


def _masked_values(masks: MaskSet) -> torch.Tensor:
    return torch.cat([p.detach()[m == 0] for p, m in zip(masks.params, masks.masks)])


def test_pruned_weights_stay_zero_through_training_and_checkpoint(vit, digits, tmp_path):
    masks = _pruned_half(vit)
    before = [p.detach().clone() for p in masks.params]
    train_phase(vit, *digits, TINY, hooks=PhaseHooks(after_step=masks.apply))
    assert torch.count_nonzero(_masked_values(masks)) == 0
    kept_moved = sum(int(((p.detach() != b) & (m != 0)).sum()) for p, b, m in zip(masks.params, before, masks.masks))
    assert kept_moved > 0.9 * masks.total / 2          # the surviving weights did train
    path = storage.save_tensors(tmp_path / "ckpt.safetensors", vit.state_dict(), {"state": "1"})
    stored = load_file(path)
    assert all(torch.count_nonzero(stored[n][m == 0]) == 0 for n, m in zip(masks.names, masks.masks))


def test_without_reapplying_masks_the_optimiser_revives_pruned_weights(vit, digits):
    masks = _pruned_half(vit)
    train_phase(vit, *digits, replace(TINY, epochs=1))
    assert torch.count_nonzero(_masked_values(masks)) > 0   # what the after_step hook prevents


def test_masks_round_trip_through_safetensors(vit, tmp_path):
    masks = _pruned_half(vit)
    path = storage.save_tensors(tmp_path / "m.safetensors", masks.to_tensors(), {})
    loaded = MaskSet.dense(vit).load(load_file(path))
    assert all(torch.equal(a, b) for a, b in zip(masks.masks, loaded.masks))
    assert loaded.sparsity() == pytest.approx(50.0, abs=1e-3)
    with pytest.raises(ValueError, match="missing"):
        MaskSet.dense(vit).load({k: v for k, v in masks.to_tensors().items() if "fc2" not in k})
