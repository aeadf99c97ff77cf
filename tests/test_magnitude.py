"""Magnitude pruning: exact counts, smallest weights first, global vs layer-wise, nesting."""
import pytest
import torch

from harness.models import create_model
from harness.prune.magnitude import magnitude_masks
from harness.prune.masks import MaskSet


@pytest.fixture
def dense():
    torch.manual_seed(0)
    return MaskSet.dense(create_model("vit_tiny_digits", 10, 1))


def _pruned(masks: MaskSet) -> int:
    return sum(masks.pruned_counts())


def test_global_prunes_the_smallest_magnitudes_to_the_exact_count(dense):
    with torch.no_grad():
        dense.params[5].mul_(0.1)          # one layer of small weights: global pruning takes it first
    pruned = magnitude_masks(dense, 0.37, "global")
    assert _pruned(pruned) == round(0.37 * dense.total)
    cut = torch.cat([p.detach().abs()[m == 0] for p, m in zip(pruned.params, pruned.masks)]).max()
    kept = torch.cat([p.detach().abs()[m != 0] for p, m in zip(pruned.params, pruned.masks)]).min()
    assert cut <= kept
    per_layer = pruned.layer_sparsity()
    assert per_layer[dense.names[5]] > 95 and min(per_layer.values()) < 37


def test_layerwise_prunes_every_layer_to_the_fraction(dense):
    with torch.no_grad():
        dense.params[5].mul_(0.1)
    pruned = magnitude_masks(dense, 0.37, "layer")
    for count, m in zip(pruned.pruned_counts(), pruned.masks):
        assert count == round(0.37 * m.numel())


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruned_weights_stay_pruned_at_a_higher_target(dense, scope):
    first = magnitude_masks(dense, 0.3, scope)
    with torch.no_grad():            # a pruned weight that grew large must not come back
        for p, m in zip(first.params, first.masks):
            p[m == 0] = 10.0
    second = magnitude_masks(first, 0.5, scope)
    assert all(bool((b[a == 0] == 0).all()) for a, b in zip(first.masks, second.masks))
    assert _pruned(second) == pytest.approx(0.5 * dense.total, abs=len(dense.masks))
