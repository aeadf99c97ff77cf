import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from harness.models import (LoadAudit, ModelError, audit_keys, create_model, load_init,
                           native_image_size)


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


@pytest.fixture(scope="module")
def vit_small(tmp_path_factory):
    from tests.forensics_support import vit_small_file

    return vit_small_file(tmp_path_factory.mktemp("vits"))


def test_a_timm_vit_small_file_into_the_digits_model_is_one_line_saying_why(vit_small):
    """The seed's scenario on CPU: a 14 x 14 grid with a class token, width 384, into a model of
    16 tokens without one, width 64. It used to crash in the pos-embed resample."""
    with pytest.raises(ModelError) as info:
        load_init(create_model("vit_tiny_digits", 10, in_chans=1), str(vit_small))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--init {vit_small} does not fit the model")
    assert "the file holds 197 position tokens (1 prefix + 14x14 grid), width 384" in message
    assert "the model needs 16 position tokens (0 prefix + 4x4 grid), width 64" in message
    assert "pos_embed: file (1, 197, 384), model (1, 16, 64)" in message


def test_pos_embed_is_resampled_only_from_a_square_grid_of_the_models_width():
    model = create_model("vit_micro_patch4_32", 10)         # class token + 8 x 8 grid, width 64
    state = model.state_dict()
    cases = {"width": torch.randn(1, 1 + 4 * 4, 32),        # square grid, another width
             "no grid": torch.randn(1, 1 + 15, 64),          # 15 patch tokens: no square grid
             "prefix": torch.randn(1, 4 * 4, 64),            # no class token among 16 tokens
             "broadcast": torch.zeros(1).expand(1, 1 + 64 * 64, 64)}   # never expanded to resample
    for case, pos in cases.items():
        incoming = dict(state, pos_embed=pos)
        if case == "prefix":                                   # a file without a class token
            incoming.pop("cls_token")
        audit = LoadAudit(source=case)
        audit_keys(model, incoming, audit)
        assert any(e.startswith("pos_embed: file") for e in audit.shape_mismatched), case
        assert not audit.resampled, case


def test_an_unreadable_or_unusable_init_is_a_model_error(tmp_path):
    cut = tmp_path / "cut.pth"
    torch.save(create_model("vit_tiny_digits", 10, in_chans=1).state_dict(), cut)
    cut.write_bytes(cut.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"^--init: .*cut\.pth: cannot be read"):
        load_init(create_model("vit_tiny_digits", 10, in_chans=1), str(cut))
    state = create_model("vit_tiny_digits", 10, in_chans=1).state_dict()
    state["blocks.0.mlp.fc1.weight"] = state["blocks.0.mlp.fc1.weight"].to_sparse()
    torch.save(state, tmp_path / "sparse.pth")
    with pytest.raises(ModelError, match=r"blocks\.0\.mlp\.fc1\.weight: file tensor has layout "
                                         r"sparse_coo"):
        load_init(create_model("vit_tiny_digits", 10, in_chans=1), str(tmp_path / "sparse.pth"))
    with pytest.raises(ModelError, match=r"^--init 'timm:' names no model: write timm:NAME"):
        load_init(create_model("vit_tiny_digits", 10, in_chans=1), "timm:")   # no hub call made


# --- a user's model by import path, the research group's way (examples/own_project) ---------
OWN = Path(__file__).resolve().parent.parent / "examples" / "own_project"


@pytest.fixture
def own_project(monkeypatch):
    monkeypatch.syspath_prepend(str(OWN))
    return "own_vit.model:vit_digits"


def test_a_factory_by_import_path_builds_the_users_class(own_project):
    model = create_model(own_project, num_classes=7, in_chans=1, image_size=32)
    assert type(model).__name__ == "VisionTransformer" and model.head.out_features == 7
    assert model.patch_embed.proj.in_channels == 1


def test_their_init_file_loads_with_its_input_statistics_listed_and_inspect_agrees(own_project, tmp_path):
    """Their init files carry `normalize.mean/std` (the input statistics their script attaches);
    a model without that module loads the file, says it left them out, and `harness inspect
    --arch` reports the same fit."""
    from harness.forensics.inspection import inspect_checkpoint

    import own_vit.model

    theirs = create_model(own_project, num_classes=10, in_chans=3, image_size=32)
    theirs.normalize = own_vit.model.Normalize([0.3056] * 3, [0.3230] * 3)   # as train.py does
    path = tmp_path / "vit_mini_digits_init.pth.tar"
    torch.save({"state_dict": theirs.state_dict()}, path)
    ours = create_model(own_project, num_classes=10, in_chans=3, image_size=32)
    audit = load_init(ours, str(path))
    assert audit.fraction_supplied == 1.0 and not audit.unexpected
    assert [b.split(" =")[0] for b in audit.ignored_buffers] == ["normalize.mean", "normalize.std"]
    assert "0.3056" in audit.ignored_buffers[0]
    assert torch.equal(ours.blocks[0].attn.qkv.weight, theirs.blocks[0].attn.qkv.weight)
    report = inspect_checkpoint(path, arch=own_project, num_classes=10).load_audit
    assert report["passed"] and report["ignored_buffers"] == audit.ignored_buffers


def test_an_unexpected_weight_fails_load_and_inspect_alike(own_project, tmp_path):
    from harness.forensics.inspection import inspect_checkpoint

    state = create_model(own_project, num_classes=10, in_chans=3, image_size=32).state_dict()
    state["extra_adapter.weight"] = torch.randn(16, 16)
    path = tmp_path / "with_adapter.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"1 unexpected key\(s\) \(the model has no place for them\): "
                                         r"extra_adapter.weight"):
        load_init(create_model(own_project, num_classes=10, in_chans=3, image_size=32), str(path))
    report = inspect_checkpoint(path, arch=own_project, num_classes=10).load_audit
    assert not report["passed"] and "extra_adapter.weight" in report["problem"]


# --- a user's module with a module-level tensor, first imported where a layout is built on meta
MODULE_TENSOR = '''
import torch
from torch import nn

SCALE = torch.tensor([0.5, 2.0])          # made once, when the module is imported


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(2, num_classes)
        self.register_buffer("scale", SCALE.clone())

    def forward(self, x):
        return self.fc(x.flatten(1)[:, :2] * self.scale)


def factory(num_classes):
    return Net(num_classes)
'''


@pytest.mark.parametrize("first", ["skeleton", "under_meta"])
def test_a_module_level_tensor_keeps_its_data_when_the_module_is_first_built_on_meta(
        first, tmp_path, monkeypatch):
    """The module was imported inside ``with torch.device("meta")`` (a layout built without
    weights) and its module-level tensor became a meta tensor: every later real model of it
    failed with "Cannot copy out of meta tensor; no data!"."""
    from harness.models import create_skeleton

    name = f"scaled_{first}"
    (tmp_path / f"{name}.py").write_text(MODULE_TENSOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    if first == "skeleton":
        layout = create_skeleton(f"{name}:factory", 3)
    else:                                   # any caller that builds the whole call under meta
        with torch.device("meta"):
            layout = create_model(f"{name}:factory", 3)
    assert layout.fc.weight.is_meta
    assert sys.modules[name].SCALE.tolist() == [0.5, 2.0]
    model = create_model(f"{name}:factory", 3).to("cpu")
    assert model.scale.tolist() == [0.5, 2.0]
    assert model(torch.ones(4, 1, 2, 2)).shape == (4, 3)
    monkeypatch.delitem(sys.modules, name)
