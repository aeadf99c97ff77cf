"""One file judged end to end: claims by name, metadata or --init; verdicts never from names;
folders searched; the harness Verdict of a claim."""
import shutil

import pytest
import timm
import torch
from safetensors.torch import save_file

from fixtures.checkpoints import fresh_state
from harness.forensics.inspection import (claim_verdict, find_checkpoints, inspect_checkpoint)
from harness.forensics.verdict import RANDOM_INIT, TRAINED, UNREADABLE


@pytest.fixture(scope="module")
def init_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "weights.pth"
    torch.save({"state_dict": fresh_state(0)}, path)
    return path


def test_verdict_never_depends_on_the_name(init_file, tmp_path):
    named = tmp_path / "vit_small_cifar10_pretrained_init.pth.tar"
    shutil.copy(init_file, named)
    plain, claimed = inspect_checkpoint(init_file), inspect_checkpoint(named)
    assert plain.verdict == claimed.verdict == RANDOM_INIT
    assert plain.claim is None and plain.problem is None
    assert claimed.claim == "named pretrained"
    assert claimed.problem.startswith("claims pretrained (named pretrained) but is random-init")


@pytest.mark.parametrize("name,claims", [("vit_small_cifar10_pretrained_init.pth.tar", True),
                                         ("ViT-Pre-Trained.safetensors", True),
                                         ("vit_not_pretrained.pth", False),
                                         ("vit_scratch.pth", False)])
def test_claim_by_name(init_file, tmp_path, name, claims):
    shutil.copy(init_file, tmp_path / name)
    assert (inspect_checkpoint(tmp_path / name).claim == "named pretrained") is claims


def test_claims_by_metadata_and_by_init(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file(fresh_state(0), str(path), metadata={"pretrained": "true"})
    assert inspect_checkpoint(path).claim == "metadata pretrained=true"
    torch.save({"state_dict": fresh_state(0), "kind": "ImageNet-pretrained"}, tmp_path / "w.pt")
    assert "metadata kind=" in inspect_checkpoint(tmp_path / "w.pt").claim
    result = inspect_checkpoint(tmp_path / "w.pt", claim="the --init of a run")
    assert result.claim.startswith("the --init of a run")


@pytest.mark.parametrize("arch", ["resnet10t", "convnext_atto", "mobilenetv3_small_050",
                                  "deit_tiny_patch16_224", "efficientnet_b0"])
def test_random_inits_of_unseen_timm_architectures(arch, tmp_path):
    torch.manual_seed(3)
    model = timm.create_model(arch, pretrained=False, num_classes=10)
    path = tmp_path / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    result = inspect_checkpoint(path)
    assert result.verdict == RANDOM_INIT, result.summary


def test_claim_verdict_line_names_verdict_and_evidence(init_file, tmp_path):
    named = tmp_path / "x_pretrained.pth"
    shutil.copy(init_file, named)
    verdict = claim_verdict(inspect_checkpoint(named), "checkpoints/x")
    assert not verdict.passed and "\n" not in verdict.line()
    assert "random-init" in verdict.line() and "MP edge" in verdict.line()
    assert verdict.evidence["verdict"] == RANDOM_INIT


def test_unreadable_file_is_a_verdict_not_an_exception(tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(b"PK\x03\x04 truncated")
    result = inspect_checkpoint(path)
    assert result.verdict == UNREADABLE and result.problem.startswith("unreadable")
    assert not claim_verdict(result, "c").passed


def test_folders_are_searched_recursively(tmp_path, init_file):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(init_file, tmp_path / "a" / "b" / "w.pth.tar")
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert find_checkpoints([tmp_path]) == [tmp_path / "a" / "b" / "w.pth.tar"]


def test_seconds_are_measured_in_process(init_file):
    result = inspect_checkpoint(init_file)
    assert 0 < result.seconds < 30
    assert result.to_dict()["seconds"] == round(result.seconds, 4)
    assert TRAINED not in {g.verdict for g in result.groups}
