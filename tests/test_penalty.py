"""RSST's penalty: the coefficient grows as its schedule says, and the term is the L2 of the
selected weights only."""
import math

import pytest
import torch

from harness.models import create_model
from harness.prune.masks import MaskSet
from harness.prune.penalty import CURVES, StructurePenalty, coefficient
from harness.spec import PruneSpec

GRID = [i / 100 for i in range(101)]


@pytest.mark.parametrize("schedule", list(CURVES))
def test_coefficient_rises_in_granularity_steps_to_the_limit(schedule):
    values = [coefficient(schedule, p, limit=0.1, granularity=0.005, exponents=4.0) for p in GRID]
    assert values[0] == 0 and values[-1] == pytest.approx(0.1)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert all(abs(v / 0.005 - round(v / 0.005)) < 1e-6 for v in values)
    assert len(set(values)) > 5


@pytest.mark.parametrize("schedule, at_half", [
    ("x", 0.05), ("x^2", 0.025), ("x^3", 0.0125),
    ("exp", 0.1 * (math.exp(0.5) - 1) / (math.e - 1)),
    ("exp_custom_exponents", 0.1 * (math.exp(2.0) - 1) / (math.exp(4.0) - 1))])
def test_coefficient_at_mid_state_follows_the_curve(schedule, at_half):
    got = coefficient(schedule, 0.5, limit=0.1, granularity=1e-5, exponents=4.0)
    assert at_half - 1e-5 < got <= at_half + 1e-12


def test_custom_exponents_set_the_curvature():
    mid = [coefficient("exp_custom_exponents", 0.5, limit=1.0, granularity=1e-6, exponents=a)
           for a in (1.0, 4.0, 8.0)]
    assert mid[0] > mid[1] > mid[2]


def test_penalty_is_the_coefficient_times_the_selected_squares():
    torch.manual_seed(0)
    vit = create_model("vit_tiny_digits", 10, 1)
    masks = MaskSet.dense(vit)
    selections = [torch.zeros_like(m) for m in masks.masks]
    selections[2][7] = 1                  # neuron 7 of block 0: fc1 row and fc2 column
    selections[3][:, 7] = 1
    spec = PruneSpec(method="rsst", reg_schedule="x^2", reg_limit=0.1, reg_granularity=0.001)
    penalty = StructurePenalty(masks.params, selections, spec)
    fc1, fc2 = vit.blocks[0].mlp.fc1.weight, vit.blocks[0].mlp.fc2.weight
    value = penalty(0.5)
    expected = 0.025 * (fc1[7].square().sum() + fc2[:, 7].square().sum())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert torch.count_nonzero(fc1.grad[:7]) == 0 and torch.count_nonzero(fc1.grad[7]) == 64
    assert vit.blocks[0].attn.qkv.weight.grad is None     # unselected weights are not in the term
    assert penalty.used == [pytest.approx(0.025)]


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU (pytest -m gpu on a GPU runner)")])])
def test_a_state_that_cuts_nothing_adds_a_zero_on_the_weights_device(device):
    """A per-state rate over all channels re-selects the same ones after State 1: RSST has
    nothing to penalise, and the zero term must live where the loss does."""
    vit = create_model("vit_tiny_digits", 10, 1).to(device)
    masks = MaskSet.dense(vit)
    spec = PruneSpec(method="rsst", reg_schedule="x")
    penalty = StructurePenalty(masks.params, [torch.zeros_like(m) for m in masks.masks], spec)
    term = penalty(0.7)
    assert penalty.params == [] and term.device.type == device and float(term) == 0.0
    total = torch.zeros((), device=device)
    total += term.detach()                  # as train_phase accumulates it
    assert penalty.used == [pytest.approx(0.07)]
