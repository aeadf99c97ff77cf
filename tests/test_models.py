import pytest
import torch
from safetensors.torch import save_file

from harness.models import ModelError, create_model, load_init, native_image_size


def test_harness_variants_and_timm_names():
    m = create_model("vit_tiny_digits", 10, in_chans=1)
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert native_image_size("vit_tiny_digits") == 8
    assert native_image_size("vit_small_patch16_224") == 224
    with pytest.raises(ModelError, match="unknown model 'resnet9000'"):
        create_model("resnet9000", 10)


def test_load_init_strict_and_audited(tmp_path):
    torch.manual_seed(0)
    src = create_model("vit_tiny_digits", 10, in_chans=1)
    path = tmp_path / "init.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}, path)
    dst = create_model("vit_tiny_digits", 10, in_chans=1)
    audit = load_init(dst, str(path))
    assert audit.container == "state_dict" and audit.stripped_prefixes == ["module."]
    assert audit.missing == [] and audit.unexpected == [] and audit.fraction_supplied == 1.0
    assert torch.equal(dst.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)


def test_head_with_other_class_count_stays_fresh_and_is_reported(tmp_path):
    src = create_model("vit_tiny_digits", 100, in_chans=1)
    path = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = create_model("vit_tiny_digits", 10, in_chans=1)
    head_before = dst.head.weight.clone()
    audit = load_init(dst, str(path))
    assert sorted(h.split(":")[0] for h in audit.head_reinitialised) == ["head.bias", "head.weight"]
    assert torch.equal(dst.head.weight, head_before)
    assert torch.equal(dst.blocks[1].mlp.fc1.weight, src.blocks[1].mlp.fc1.weight)
    assert 0.9 < audit.fraction_supplied < 1.0


def test_a_file_that_does_not_fit_is_refused_with_the_keys(tmp_path):
    src = create_model("vit_tiny_digits", 10, in_chans=1)
    state = {f"encoder.{k}": v for k, v in src.state_dict().items()}  # wrong prefix: nothing loads
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"missing key\(s\).*unexpected key\(s\)"):
        load_init(create_model("vit_tiny_digits", 10, in_chans=1), str(path))


def test_pos_embed_resampled_to_the_model_grid(tmp_path):
    src = create_model("vit_micro_patch4_32", 10)
    dst = create_model("vit_micro_patch4_32", 10)
    state = src.state_dict()
    state["pos_embed"] = torch.randn(1, 1 + 4 * 4, 64)  # a 4x4 grid into the 8x8 model
    path = tmp_path / "grid.pth"
    torch.save(state, path)
    audit = load_init(dst, str(path))
    assert audit.resampled and audit.resampled[0].startswith("pos_embed")
