"""Per-matrix evidence: random inits of any shape and scale stay under the random-matrix limits;
planted structure, heavy tails, constants and non-finite values are found."""
import math

import pytest
import torch
from hypothesis import assume, given, settings, strategies as st
from torch import nn

from harness.forensics.evidence import (KIND_CONSTANT, KIND_MASK, KIND_MATRIX, KIND_NON_FINITE,
                                        KIND_OTHER, KIND_SKIPPED, ONE_ELEMENT, UnjudgeableTensor,
                                        as_matrix, sv_limit, sv_min_limit, tensor_evidence,
                                        top_singular_value)
from harness.forensics.judgement import NO_EVIDENCE, judge

INITS = {
    "normal": lambda t, s: nn.init.normal_(t, std=s),
    "trunc_normal": lambda t, s: nn.init.trunc_normal_(t, std=s, a=-2 * s, b=2 * s),
    "trunc_normal_abs2": lambda t, s: nn.init.trunc_normal_(t, std=s),   # timm's default bounds
    "uniform": lambda t, s: nn.init.uniform_(t, -s, s),
    "kaiming_normal": lambda t, s: nn.init.kaiming_normal_(t).mul_(s),
    "kaiming_uniform": lambda t, s: nn.init.kaiming_uniform_(t, a=math.sqrt(5)).mul_(s),
    "xavier_normal": lambda t, s: nn.init.xavier_normal_(t).mul_(s),
    "xavier_uniform": lambda t, s: nn.init.xavier_uniform_(t).mul_(s),
}

shapes = st.tuples(st.integers(16, 400), st.integers(16, 400))
scales = st.floats(1e-4, 1e2)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(shape=shapes, init=st.sampled_from(sorted(INITS)), scale=scales, seed=st.integers(0, 2**31))
def test_random_inits_of_any_shape_and_scale_are_at_init(shape, init, scale, seed):
    torch.manual_seed(seed)
    weight = INITS[init](torch.empty(shape), scale)
    ev = tensor_evidence("w", weight)
    assert ev.kind == KIND_MATRIX
    assert not ev.looks_trained, ev.to_dict()


@settings(max_examples=40, deadline=None)
@given(shape=shapes, rank=st.integers(1, 4), strength=st.floats(2.0, 10.0),
       scale=scales, seed=st.integers(0, 2**31))
@pytest.mark.slow
def test_planted_low_rank_structure_above_the_edge_is_trained(shape, rank, strength, scale, seed):
    """Init noise plus rank-r structure of singular values `strength` x the noise's MP edge,
    kept where the result's top singular value is well above the MP edge of a random matrix of
    its own shape and std (>= 1.5x; the limit is <= 1.32x for any matrix from 16 x 16 up). Large
    spikes in a small matrix raise its std too, so not every draw is above its own edge."""
    m, n = shape
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(m, n, generator=g) * scale
    u, _ = torch.linalg.qr(torch.randn(m, rank, generator=g))
    v, _ = torch.linalg.qr(torch.randn(n, rank, generator=g))
    weight = noise + strength * scale * (math.sqrt(m) + math.sqrt(n)) * (u @ v.T)
    own_edge = float(weight.pow(2).mean().sqrt()) * (math.sqrt(m) + math.sqrt(n))
    assume(float(torch.linalg.matrix_norm(weight, ord=2)) >= 1.5 * own_edge)
    ev = tensor_evidence("w", weight)
    assert ev.looks_trained, ev.to_dict()
    assert ev.sv_ratio > ev.sv_limit


def test_conv_kernels_are_reshaped_out_by_rest():
    assert as_matrix(torch.zeros(64, 3, 7, 7)).shape == (64, 147)
    assert as_matrix(torch.zeros(1, 197, 384)).shape == (197, 384)   # pos_embed
    assert as_matrix(torch.zeros(1, 1, 384)).shape == (384,)          # cls_token: a vector
    conv = nn.Conv2d(32, 64, 3)
    assert tensor_evidence("conv.weight", conv.weight.data).kind == KIND_MATRIX


def test_exact_constants_non_finite_and_integers_are_named():
    assert tensor_evidence("norm.weight", torch.ones(64)).constant == 1.0
    assert tensor_evidence("norm.bias", torch.zeros(64)).kind == KIND_CONSTANT
    bad = torch.randn(32, 32)
    bad[1, 2], bad[3, 4] = float("nan"), float("inf")
    ev = tensor_evidence("blocks.0.w", bad)
    assert (ev.kind, ev.non_finite) == (KIND_NON_FINITE, 2)
    assert tensor_evidence("steps", torch.tensor(3)).kind == KIND_SKIPPED
    assert tensor_evidence("bias", torch.randn(64)).kind == KIND_OTHER
    assert tensor_evidence("tiny", torch.randn(4, 64)).kind == KIND_OTHER


def test_heavy_tails_are_trained():
    g = torch.Generator().manual_seed(0)
    student_t = torch.distributions.StudentT(3.0).sample((256, 256))   # kurtosis >> 3
    ev = tensor_evidence("w", student_t)
    assert ev.kurtosis > ev.kurtosis_limit and ev.looks_trained
    assert tensor_evidence("w", torch.randn(256, 256, generator=g)).kurtosis == pytest.approx(3, abs=0.1)


def test_an_isolated_truncation_bound_value_does_not_make_an_init_trained():
    """torch/timm trunc_normal_ can draw exactly its bound (2.0 at std 0.02) via erfinv(-1)."""
    torch.manual_seed(0)
    weight = nn.init.trunc_normal_(torch.empty(384, 1536), std=0.02)
    weight[7, 11] = -2.0
    ev = tensor_evidence("blocks.3.mlp.fc2.weight", weight)
    assert ev.outliers == 1 and not ev.looks_trained, ev.to_dict()
    many = weight.clone()
    many.view(-1)[::1000] = 2.0            # hundreds of extremes are not isolated: heavy tails
    assert tensor_evidence("w", many).looks_trained


@pytest.mark.slow
def test_lanczos_top_singular_value_matches_svd():
    g = torch.Generator().manual_seed(1)
    for shape in [(384, 1152), (1536, 384), (197, 384)]:
        a = torch.randn(*shape, generator=g)
        exact = float(torch.linalg.matrix_norm(a, ord=2))
        assert top_singular_value(a) == pytest.approx(exact, rel=0.02)


def test_limits_shrink_towards_the_edge_as_matrices_grow():
    assert sv_limit(16, 16) > sv_limit(64, 64) > sv_limit(384, 384) > 1.0
    assert sv_limit(384, 384) < 1.06
    assert sv_min_limit(64, 64) is None          # square: no lower edge to fall below
    assert 0 < sv_min_limit(10, 384) < 1


@pytest.mark.parametrize("scale,dtype", [(1e11, torch.float32), (1e-9, torch.float32),
                                         (1e200, torch.float64), (1e-200, torch.float64)])
def test_extreme_scales_are_judged_like_any_other(scale, dtype):
    """A random matrix of any finite scale is at init: float32 fourth powers of 1e11 used to
    overflow (kurtosis inf: 'trained'), float64 values of 1e200 to become inf ('non-finite')."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(256, 256, generator=g, dtype=torch.float64).mul(scale).to(dtype)
    ev = tensor_evidence("w", weight)
    assert ev.kind == KIND_MATRIX and math.isfinite(ev.kurtosis), ev.to_dict()
    assert ev.kurtosis == pytest.approx(3, abs=0.15) and not ev.looks_trained
    assert ev.std == pytest.approx(scale, rel=0.05)


def test_broadcast_views_are_judged_from_the_values_they_repeat():
    zeros = torch.zeros(1).expand(30000, 30000)                  # 9e8 elements over 1
    ev = tensor_evidence("w", zeros)
    assert (ev.kind, ev.constant, ev.numel) == (KIND_CONSTANT, 0.0, 900_000_000)
    assert ev.note == "a broadcast view repeating 1 value(s) 900000000 times"
    row = torch.randn(1, 64).expand(64, 64)
    assert tensor_evidence("w", row).kind == KIND_OTHER
    nan = torch.tensor([float("nan"), 1.0]).reshape(2, 1).expand(2, 1000)
    assert tensor_evidence("w", nan).non_finite == 1000
    overlapping = torch.randn(2000).as_strided((1000, 1000), (1, 1))
    with pytest.raises(UnjudgeableTensor, match="overlapping strides"):
        tensor_evidence("w", overlapping)


def test_tensors_without_dense_values_are_named():
    with pytest.raises(UnjudgeableTensor, match="'s' has layout sparse_coo"):
        tensor_evidence("s", torch.randn(32, 32).to_sparse())
    with pytest.raises(UnjudgeableTensor, match="'m' is on the meta device"):
        tensor_evidence("m", torch.empty(32, 32, device="meta"))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_quantized_weights_are_judged_and_odd_dtypes_skipped_by_name():
    torch.manual_seed(0)
    q = torch.quantize_per_tensor(torch.randn(128, 128), 0.05, 0, torch.qint8)
    assert tensor_evidence("q", q).kind == KIND_MATRIX
    odd = {"complex64": torch.randn(16, 16, dtype=torch.complex64),
           "bool": torch.ones(4, dtype=torch.bool), "uint16": torch.ones(4, 4).to(torch.uint16)}
    for name in ("float8_e8m0fnu", "float4_e2m1fn_x2"):
        if hasattr(torch, name):
            odd[name] = torch.zeros(16, 16, dtype=torch.uint8).view(getattr(torch, name))
    for name, tensor in odd.items():
        ev = tensor_evidence("x", tensor)
        assert ev.kind == KIND_SKIPPED and ev.note == f"dtype {name}: not judged"
    scalar = tensor_evidence("scalar", torch.tensor(0.5))    # finite: no evidence (see below)
    assert (scalar.kind, scalar.note) == (KIND_OTHER, ONE_ELEMENT)


@pytest.mark.parametrize("value", [torch.tensor(1.0), torch.zeros(1), torch.full((1, 1, 1), 2.66)])
def test_a_one_element_tensor_is_never_evidence(value):
    """A learned scalar (temperature, logit scale, PReLU slope) is constant by definition."""
    ev = tensor_evidence("logit_scale", value)
    assert (ev.kind, ev.note, ev.judged, ev.constant) == (KIND_OTHER, ONE_ELEMENT, False, None)
    judged = judge([ev, tensor_evidence("t", torch.tensor([3.0]))])
    assert judged.verdict == NO_EVIDENCE and not judged.groups
    assert [g.verdict for g in judged.silent] == [NO_EVIDENCE, NO_EVIDENCE]
    nan = tensor_evidence("logit_scale", torch.tensor(float("nan")))
    assert nan.kind == KIND_NON_FINITE          # still named: a NaN scalar breaks the model


def test_pruning_masks_are_named_and_never_weights():
    torch.manual_seed(0)
    mask = (torch.rand(64, 64) > 0.5).float()
    for name in ("fc.weight_mask", "conv.bias_mask", "mask"):
        ev = tensor_evidence(name, mask)
        assert ev.kind == KIND_MASK and not ev.judged and not ev.looks_trained, name
    ones = tensor_evidence("fc.weight_mask", torch.ones(64, 64))
    assert ones.kind == KIND_MASK and ones.constant is None   # not an init constant either
    wide = tensor_evidence("fc.weight_mask", torch.ones(1, 64).expand(64, 64))
    assert (wide.kind, wide.shape) == (KIND_MASK, (64, 64))
    assert tensor_evidence("fc.weight", mask).kind == KIND_MATRIX     # judged by name only
    assert tensor_evidence("fc.weight_mask", torch.randn(64, 64)).kind == KIND_MATRIX
