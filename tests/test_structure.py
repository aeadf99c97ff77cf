"""Channel families of a timm ViT: heads and MLP neurons laid out as timm's forward uses them."""
import pytest
import torch

from harness.models import create_model
from harness.prune.masks import MaskSet
from harness.prune.structure import families, summary


@pytest.fixture
def vit_and_masks():
    torch.manual_seed(0)
    vit = create_model("vit_tiny_digits", 10, 1)   # dim 64, 4 heads of 16, MLP 256, depth 4
    return vit, MaskSet.dense(vit)


def test_families_cover_every_prunable_weight_once(vit_and_masks):
    vit, masks = vit_and_masks
    fams = families(vit, masks)
    assert [(f.name, f.unit, f.n) for f in fams[:2]] == [("blocks.0.attn", "head", 4), ("blocks.0.mlp", "neuron", 256)]
    assert {f.unit for f in fams} == {"head", "neuron"} and len(fams) == 8
    assert sum(f.n * f.channel_size for f in fams) == masks.total
    assert [f.channel_size for f in fams[:2]] == [3 * 16 * 64 + 64 * 16, 64 + 64]


def test_a_head_is_its_q_k_v_rows_and_proj_columns(vit_and_masks):
    vit, masks = vit_and_masks
    head = families(vit, masks)[0]
    keep = torch.ones(4)
    keep[2] = 0
    qkv = head.expand(keep, head.members[0].index, vit.blocks[0].attn.qkv.weight.shape)
    proj = head.expand(keep, head.members[1].index, vit.blocks[0].attn.proj.weight.shape)
    # timm: qkv(x).reshape(B, N, 3, heads, head_dim): row = part * 64 + head * 16 + d
    dropped_rows = {part * 64 + 2 * 16 + d for part in range(3) for d in range(16)}
    assert {int(r) for r in torch.nonzero(qkv.sum(1) == 0)} == dropped_rows
    assert {int(c) for c in torch.nonzero(proj.sum(0) == 0)} == set(range(32, 48))
    assert int((qkv == 0).sum()) == 48 * 64 and int((proj == 0).sum()) == 64 * 16


def test_a_neuron_is_its_fc1_row_and_fc2_column(vit_and_masks):
    vit, masks = vit_and_masks
    mlp = families(vit, masks)[1]
    keep = torch.ones(256)
    keep[7] = 0
    fc1 = mlp.expand(keep, mlp.members[0].index, vit.blocks[0].mlp.fc1.weight.shape)
    fc2 = mlp.expand(keep, mlp.members[1].index, vit.blocks[0].mlp.fc2.weight.shape)
    assert torch.nonzero(fc1 == 0)[:, 0].unique().tolist() == [7]
    assert torch.nonzero(fc2 == 0)[:, 1].unique().tolist() == [7]


def test_summary_counts_left_removed_and_partial_channels(vit_and_masks):
    vit, masks = vit_and_masks
    fams = families(vit, masks)
    m = [t.clone() for t in masks.masks]
    m[0][0:16] = 0                # head 0 of block 0 loses its q rows only: partial
    m[2][5] = 0                   # neuron 5 of block 0 loses its fc1 row ...
    m[3][:, 5] = 0                # ... and its fc2 column: removed
    out = summary(fams, m)
    assert out["blocks.0.attn"] == {"unit": "head", "total": 4, "left": 3, "removed": 0, "partial": 1}
    assert out["blocks.0.mlp"] == {"unit": "neuron", "total": 256, "left": 255, "removed": 1, "partial": 0}
