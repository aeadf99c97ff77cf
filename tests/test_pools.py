"""The per-state-rate schedule (harness.prune.pools) on a real timm ViT: heads and MLP neurons
kept in separate pools at their own rates, counted from the remaining or from all channels,
ranked over every channel (a removed one can come back), and RSST training a re-selected
channel while penalising only what it cuts."""
import pytest
import torch

from harness.models import create_model
from harness.prune import pools
from harness.prune.masks import MaskSet
from harness.prune.methods import METHODS
from harness.prune.structure import families, summary, unit_shares
from harness.spec import PruneSpec

HEADS, NEURONS = 16, 1024       # vit_tiny_digits: 4 blocks of 4 heads and 256 MLP neurons


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_digits", 10, 1)


def _rate(method="refill", **kw) -> PruneSpec:
    return PruneSpec(method=method, schedule="per_state_rate", **{"rate": 0.5, **kw})


def _left(fams, masks: MaskSet) -> dict:
    out = {"head": 0, "neuron": 0}
    for f in summary(fams, masks.masks).values():
        out[f["unit"]] += f["left"]
    return out


def _state(vit, masks: MaskSet, spec: PruneSpec):
    plan = METHODS[spec.method].plan(masks, families(vit, masks), None, spec)
    plan.final.apply()
    return plan


def test_heads_and_neurons_are_separate_pools_at_their_own_rates(vit):
    with torch.no_grad():              # every head now outweighs every neuron
        for block in vit.blocks:
            block.attn.qkv.weight.mul_(10)
            block.attn.proj.weight.mul_(10)
    dense = MaskSet.dense(vit)
    fams = families(vit, dense)
    plan = METHODS["refill"].plan(dense, fams, None, _rate(rate=0.5, mlp_rate=0.25))
    assert _left(fams, plan.final) == {"head": 8, "neuron": 768}
    assert all(f["partial"] == 0 for f in summary(fams, plan.final.masks).values())
    # one joint pool at the same overall sparsity removes neurons only
    joint = METHODS["refill"].plan(dense, fams, plan.final.sparsity() / 100, PruneSpec(method="refill"))
    assert _left(fams, joint.final)["head"] == HEADS


@pytest.mark.parametrize("rate_of, second", [("remaining", {"head": 4, "neuron": 576}),
                                             ("all", {"head": 8, "neuron": 768})])
def test_the_count_compounds_over_remaining_channels_or_repeats_over_all(vit, rate_of, second):
    spec = _rate(rate=0.5, mlp_rate=0.25, rate_of=rate_of)
    fams = families(vit, MaskSet.dense(vit))
    first = _state(vit, MaskSet.dense(vit), spec).final
    assert _left(fams, first) == {"head": 8, "neuron": 768}
    assert _left(fams, _state(vit, first, spec).final) == second


WEAK = ((0, 1), (0, 2), (2, 3), (3, 0))      # (block, head) made 1000x smaller


def test_the_weakest_heads_go_first_across_all_blocks(vit):
    with torch.no_grad():
        for block, head in WEAK:
            vit.blocks[block].attn.qkv.weight.view(3, 4, 16, 64)[:, head] *= 1e-3
            vit.blocks[block].attn.proj.weight[:, 16 * head:16 * head + 16] *= 1e-3
    dense = MaskSet.dense(vit)
    fams = families(vit, dense)
    out = _state(vit, dense, _rate(rate=0.2, mlp_rate=0.1)).final    # keeps floor(16 * 0.8) = 12
    heads = summary(fams, out.masks)
    assert [heads[f"blocks.{b}.attn"]["left"] for b in range(4)] == [2, 4, 3, 3]
    for block, head in WEAK:
        qkv = out.masks[dense.names.index(f"blocks.{block}.attn.qkv.weight")].view(3, 4, 16, 64)
        assert not qkv[:, head].any()


def _revivable(vit) -> MaskSet:
    """Head 0 of block 0 removed; every head of blocks 0-1 zero (scores 0): the ranking ties them,
    and the first in model order (the removed head) is kept again."""
    dense = MaskSet.dense(vit)
    with torch.no_grad():
        for block in (0, 1):
            vit.blocks[block].attn.qkv.weight.zero_()
            vit.blocks[block].attn.proj.weight.zero_()
    masks = [m.clone() for m in dense.masks]
    masks[dense.names.index("blocks.0.attn.qkv.weight")].view(3, 4, 16, 64)[:, 0] = 0
    masks[dense.names.index("blocks.0.attn.proj.weight")][:, :16] = 0
    return dense.with_masks(masks)


def test_a_removed_head_is_re_selected_where_the_geometric_schedule_keeps_it_out(vit):
    before = _revivable(vit)
    fams = families(vit, before)
    assert summary(fams, before.masks)["blocks.0.attn"]["removed"] == 1
    spec = _rate(rate=0.25, mlp_rate=0.5, rate_of="all")             # keeps 12 of 16 heads
    after = METHODS["refill"].plan(before, fams, None, spec).final
    assert summary(fams, after.masks)["blocks.0.attn"] == {
        "unit": "head", "total": 4, "left": 4, "removed": 0, "partial": 0}
    geometric = METHODS["refill"].plan(before, fams, 0.3, PruneSpec(method="refill")).final
    assert summary(fams, geometric.masks)["blocks.0.attn"]["left"] <= 3   # forced to stay removed


def test_rsst_trains_a_re_selected_head_and_penalises_only_live_weights_it_cuts(vit):
    before = _revivable(vit)
    fams = families(vit, before)
    plan = METHODS["rsst"].plan(before, fams, None, _rate("rsst", rate=0.25, mlp_rate=0.5, rate_of="all"))
    qkv = before.names.index("blocks.0.attn.qkv.weight")
    assert plan.train.masks[qkv].view(3, 4, 16, 64)[:, 0].all()       # back in training
    index = {id(p): i for i, p in enumerate(before.params)}
    cut = [before.masks[i] * (1 - plan.final.masks[i]) for i in range(len(before.masks))]
    assert len(plan.penalty.params) == sum(bool(c.any()) for c in cut) > 0
    for p, s in zip(plan.penalty.params, plan.penalty.selections):
        assert torch.equal(s, cut[index[id(p)]])        # live now, cut at the end; never negative
    assert not plan.penalty.selections[0].lt(0).any()


def test_keep_count_rounds_down_keeps_one_and_resists_float_error():
    assert pools.keep_count(72, 72, 0.7, "all") == 21
    assert pools.keep_count(21, 72, 0.7, "remaining") == 6
    assert pools.keep_count(21, 72, 0.7, "all") == 21
    assert pools.keep_count(1, 72, 0.7, "remaining") == 1
    assert pools.keep_count(10, 10, 0.8, "all") == 2          # 10 * 0.2 is 1.9999999999999996


def test_the_unstructured_step_prunes_rate_of_the_remaining_weights(vit):
    dense = MaskSet.dense(vit)
    assert pools.unstructured_fraction(dense, 0.7) == pytest.approx(0.7)
    half = dense.with_masks([torch.cat([torch.zeros_like(m[: m.shape[0] // 2]),
                                        torch.ones_like(m[m.shape[0] // 2:])]) for m in dense.masks])
    assert pools.unstructured_fraction(half, 0.7) == pytest.approx(1 - 0.5 * 0.3)


def test_nominal_target_weights_each_pool_by_its_share_of_the_weights(vit):
    dense = MaskSet.dense(vit)
    fams = families(vit, dense)
    shares = unit_shares(fams, dense)
    assert shares == pytest.approx({"head": 1 / 3, "neuron": 2 / 3})
    spec = _rate(rate=0.5, mlp_rate=0.25)
    assert spec.sparsity_at(1, shares) == pytest.approx(0.5 / 3 + 0.25 * 2 / 3)
    assert spec.sparsity_at(2, shares) == pytest.approx(0.75 / 3 + (1 - 0.75 ** 2) * 2 / 3)
    plan = _state(vit, dense, spec)
    assert plan.final.sparsity() == pytest.approx(100 * spec.sparsity_at(1, shares))
