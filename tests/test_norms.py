"""BatchNorm layers as evidence on another lab's conv net: a CIFAR-style ResNet (BatchNorm,
kaiming_normal convs, a learned PReLU slope) trained for real on digits is told from its own
fresh init without --arch, though a short training leaves most of its conv weights looking
random; a random init run once in train mode stays random; its one-element slope is no evidence."""
import json

import pytest
import torch

from harness.forensics.inspection import inspect_checkpoint
from harness.forensics.judgement import NO_EVIDENCE, RANDOM_INIT, TRAINED
from tests.forensics_support import BNResNet, digits16, trained_bn_resnet

BN_GROUPS = {"stem", "layers.0", "layers.1", "layers.2"}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """Files of the ResNet: fresh.pth, trained.pth (two epochs), and shape_check.pth (the fresh
    model after one forward pass in train mode: statistics moved, nothing trained)."""
    folder = tmp_path_factory.mktemp("resnet")
    fresh, trained, accuracy = trained_bn_resnet()
    torch.save(fresh, folder / "fresh.pth")
    torch.save(trained, folder / "trained.pth")
    model = BNResNet()
    model.load_state_dict(fresh)
    model.train()
    with torch.no_grad():
        model(digits16()[0][:32])
    torch.save(model.state_dict(), folder / "shape_check.pth")
    return folder, accuracy


@pytest.mark.slow
def test_a_trained_batchnorm_resnet_and_its_init_are_told_apart_without_arch(resnet):
    folder, accuracy = resnet
    assert accuracy > 0.5                   # it learned: 10 classes, chance is 0.1
    trained = inspect_checkpoint(folder / "trained.pth")
    assert trained.verdict == TRAINED, trained.summary
    groups = {g.name: g for g in trained.groups}
    assert BN_GROUPS <= set(groups) and all(groups[n].verdict == TRAINED for n in BN_GROUPS)
    assert "9/9 BatchNorm layers trained" in trained.summary
    # the conv weights alone would not show it: two epochs leave some of them looking random
    assert any(not t.looks_trained for n in ("stem", "layers.0") for t in groups[n].matrices)
    fresh = inspect_checkpoint(folder / "fresh.pth")
    assert fresh.verdict == RANDOM_INIT, fresh.summary
    assert "9/9 BatchNorm layers at init" in fresh.summary
    assert all(g.verdict == RANDOM_INIT for g in fresh.groups)


@pytest.mark.slow
def test_a_random_init_run_once_in_train_mode_stays_random(resnet):
    """Its statistics moved (one batch tracked), its weight and bias did not: no vote."""
    inspection = inspect_checkpoint(resnet[0] / "shape_check.pth")
    assert inspection.verdict == RANDOM_INIT, inspection.summary
    assert "9 BatchNorm layer(s) with moved statistics but weight/bias at init (no vote)" \
        in inspection.summary
    layers = {t.norm.layer: t.norm for g in inspection.groups for t in g.tensors if t.norm}
    assert len(layers) == 9 and all(n.batches == 1 and n.trained is None for n in layers.values())


@pytest.mark.slow
def test_a_learned_scalar_is_no_evidence(resnet, capsys):
    """The trained PReLU slope (one value) used to be an "untrained-constant" group."""
    from harness.cli import main

    for name in ("trained.pth", "fresh.pth"):
        inspection = inspect_checkpoint(resnet[0] / name)
        assert "act" not in {g.name for g in inspection.groups}
        silent = {g.name: g for g in inspection.silent_groups}
        assert silent["act"].verdict == NO_EVIDENCE
        assert silent["act"].words() == ("no evidence: 1 one-element tensor(s) (a single value "
                                         "is no evidence)")
    main(["inspect", str(resnet[0] / "trained.pth"), "--json"])
    data = json.loads(capsys.readouterr().out)[0]
    assert data["verdict"] == TRAINED
    assert [g["name"] for g in data["no_evidence_groups"]] == ["act"]
    main(["inspect", str(resnet[0] / "trained.pth")])
    assert "act         no-evidence         no evidence: 1 one-element" in capsys.readouterr().out


@pytest.mark.slow
def test_the_arch_comparison_agrees(resnet):
    arch = "tests.forensics_support:bn_resnet"
    trained = inspect_checkpoint(resnet[0] / "trained.pth", arch=arch)
    fresh = inspect_checkpoint(resnet[0] / "fresh.pth", arch=arch)
    assert (trained.verdict, fresh.verdict) == (TRAINED, RANDOM_INIT), trained.summary
    assert trained.load_audit["passed"] and fresh.load_audit["passed"]


def test_a_non_finite_batchnorm_layer_is_named_and_the_json_stays_strict(tmp_path, capsys):
    from harness.cli import main

    torch.manual_seed(0)
    state = BNResNet().state_dict()
    state["stem.bn.weight"][3] = float("nan")
    state["layers.0.0.bn1.running_var"][0] = float("inf")
    torch.save(state, tmp_path / "nan_bn.pth")
    inspection = inspect_checkpoint(tmp_path / "nan_bn.pth")
    assert inspection.verdict == "non-finite" and "stem.bn.weight (1 values)" in inspection.summary
    main(["inspect", str(tmp_path / "nan_bn.pth"), "--json"])

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    data = json.loads(capsys.readouterr().out, parse_constant=refuse)[0]
    layers = [t["norm"]["layer"] for g in data["groups"] for t in g["evidence"]["tensors"]
              if "norm" in t]
    assert "stem.bn" not in layers and "layers.0.0.bn1" not in layers and "layers.0.0.bn2" in layers
