"""The method registry: what IMP, Refill and RSST plan for a state, on a real timm ViT."""
import pytest
import torch

from harness.models import create_model
from harness.prune.masks import MaskSet
from harness.prune.methods import METHODS
from harness.prune.structure import families, summary
from harness.spec import PruneSpec


def _plan(method: str, device: str = "cpu"):
    torch.manual_seed(0)
    vit = create_model("vit_tiny_digits", 10, 1).to(device)
    masks = MaskSet.dense(vit)
    fams = families(vit, masks)
    return vit, masks, fams, METHODS[method].plan(masks, fams, 0.3, PruneSpec(method=method))


def test_imp_prunes_unstructured_and_trains_under_its_final_mask():
    _, masks, fams, plan = _plan("imp")
    assert plan.train is plan.final and plan.penalty is None
    assert sum(plan.final.pruned_counts()) == round(0.3 * masks.total)
    assert any(f["partial"] for f in summary(fams, plan.final.masks).values())


def test_refill_trains_under_whole_channel_masks():
    _, _, fams, plan = _plan("refill")
    assert plan.train is plan.final and plan.penalty is None
    assert all(f["partial"] == 0 for f in summary(fams, plan.final.masks).values())


def test_rsst_trains_unpruned_and_penalises_exactly_the_channels_it_cuts():
    _, masks, fams, plan = _plan("rsst")
    assert all(bool(m.all()) for m in plan.train.masks)                # nothing cut during the state
    assert all(f["partial"] == 0 for f in summary(fams, plan.final.masks).values())
    cut = [1 - m for m in plan.final.masks if not bool(m.all())]
    assert len(cut) == len(plan.penalty.selections) > 0
    assert all(torch.equal(a, b) for a, b in zip(cut, plan.penalty.selections))
    assert sum(int(s.sum()) for s in plan.penalty.selections) == sum(plan.final.pruned_counts())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (pytest -m gpu on a GPU runner)")
def test_masks_and_penalty_do_not_synchronise_with_the_host():
    vit, _, _, plan = _plan("rsst", "cuda")
    x = torch.randn(8, 1, 8, 8, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = vit(x).logsumexp(1).mean() + plan.penalty(0.5)
        loss.backward()
        plan.train.apply()
    finally:
        torch.cuda.set_sync_debug_mode("default")
