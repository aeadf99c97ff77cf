"""Refill on a real timm ViT: whole heads and MLP neurons kept or removed, the target met within
one channel, earlier removals kept, and the least important channels go first."""
import pytest
import torch

from harness.models import create_model
from harness.prune.magnitude import magnitude_masks
from harness.prune.masks import MaskSet
from harness.prune.refill import refill
from harness.prune.structure import families, summary

NEURON = 128     # weights in one MLP neuron of vit_tiny_digits (fc1 row + fc2 column)


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_digits", 10, 1)


def _refill(vit, masks: MaskSet, fraction: float, criterion: str = "l1") -> MaskSet:
    kept = magnitude_masks(masks, fraction, "global")
    return refill(families(vit, masks), masks, kept, fraction, criterion)


@pytest.mark.parametrize("criterion", ["count", "l1", "l2"])
def test_refill_keeps_or_removes_whole_channels_at_the_target(vit, criterion):
    dense = MaskSet.dense(vit)
    out = _refill(vit, dense, 0.3, criterion)
    structure = summary(families(vit, dense), out.masks)
    assert all(f["partial"] == 0 for f in structure.values())
    assert sum(f["removed"] for f in structure.values()) > 0
    pruned = sum(out.pruned_counts())
    assert 0 <= round(0.3 * dense.total) - pruned < NEURON    # within one neuron, never over


def test_refill_removes_the_weakest_head_and_neuron_whole(vit):
    with torch.no_grad():
        vit.blocks[1].attn.qkv.weight.view(3, 4, 16, 64)[:, 2] *= 1e-3   # head 2 of block 1
        vit.blocks[1].attn.proj.weight[:, 32:48] *= 1e-3
        vit.blocks[3].mlp.fc1.weight[9] *= 1e-3                           # neuron 9 of block 3
        vit.blocks[3].mlp.fc2.weight[:, 9] *= 1e-3
    dense = MaskSet.dense(vit)
    out = _refill(vit, dense, 0.05)
    names = dense.names
    qkv = out.masks[names.index("blocks.1.attn.qkv.weight")].view(3, 4, 16, 64)
    proj = out.masks[names.index("blocks.1.attn.proj.weight")]
    assert not qkv[:, 2].any() and not proj[:, 32:48].any()
    assert qkv[:, [0, 1, 3]].all() and proj[:, :32].all() and proj[:, 48:].all()
    assert not out.masks[names.index("blocks.3.mlp.fc1.weight")][9].any()
    assert not out.masks[names.index("blocks.3.mlp.fc2.weight")][:, 9].any()
    assert summary(families(vit, dense), out.masks)["blocks.1.attn"]["left"] == 3


def test_a_later_state_keeps_earlier_removals_and_removes_more(vit):
    dense = MaskSet.dense(vit)
    first = _refill(vit, dense, 0.2)
    first.apply()
    with torch.no_grad():                          # removed channels regrown must stay removed
        for p, m in zip(first.params, first.masks):
            p[m == 0] = 5.0
    second = _refill(vit, first, 0.4)
    assert all(bool((b[a == 0] == 0).all()) for a, b in zip(first.masks, second.masks))
    assert sum(second.pruned_counts()) > sum(first.pruned_counts())
    assert all(f["partial"] == 0 for f in summary(families(vit, dense), second.masks).values())


def test_a_cnn_loses_whole_output_channels():
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    cnn(torch.zeros(1, 3, 8, 8))
    dense = MaskSet.dense(cnn, include_head=True)
    fams = families(cnn, dense)
    assert [(f.name, f.unit, f.n) for f in fams] == [("0", "channel", 16), ("2", "channel", 32), ("5", "channel", 10)]
    out = refill(fams, dense, magnitude_masks(dense, 0.4, "global"), 0.4, "l2")
    structure = summary(fams, out.masks)
    assert all(f["partial"] == 0 for f in structure.values()) and structure["2"]["removed"] > 0
    conv = out.masks[1].reshape(32, -1)
    assert set(conv.sum(1).tolist()) <= {0.0, float(conv.shape[1])}
