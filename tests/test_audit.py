"""--arch: comparison with fresh inits of the architecture, and the load audit."""
import torch

from fixtures.checkpoints import fresh_state
from harness.forensics.inspection import inspect_checkpoint
from harness.forensics.verdict import FINETUNE_INIT, RANDOM_INIT, TRAINED
from tests.forensics_support import trained_digits

ARCH = "vit_tiny_digits"


def test_fresh_init_is_identified_as_the_seeded_init(tmp_path):
    path = tmp_path / "init.pth"
    torch.save({"state_dict": fresh_state(1)}, path)
    result = inspect_checkpoint(path, arch=ARCH)
    assert result.verdict == RANDOM_INIT
    assert "identical to the fresh init with seed 1" in result.summary
    audit = result.load_audit
    assert audit["passed"] and audit["fraction_supplied"] == 1.0 and audit["in_chans"] == 1
    assert audit["num_classes"] == 10


def test_trained_and_finetune_files_with_arch(tmp_path):
    trained = trained_digits()
    torch.save(trained, tmp_path / "trained.pth")
    head = fresh_state(5)
    torch.save({k: head[k] if k.startswith("head.") else v for k, v in trained.items()},
               tmp_path / "ft.pth")
    assert inspect_checkpoint(tmp_path / "trained.pth", arch=ARCH).verdict == TRAINED
    assert inspect_checkpoint(tmp_path / "ft.pth", arch=ARCH).verdict == FINETUNE_INIT


def test_prefix_mismatch_fails_the_load_audit_and_names_the_prefix(tmp_path):
    path = tmp_path / "enc.pth"
    torch.save({"model": {f"encoder.{k}": v for k, v in fresh_state(0).items()}}, path)
    result = inspect_checkpoint(path, arch=ARCH)
    audit = result.load_audit
    assert not audit["passed"] and audit["fraction_supplied"] == 0.0
    assert audit["prefix_needed"] == "stripping 'encoder.' from the file's keys"
    assert result.problem.startswith("load audit failed")


def test_strict_false_trap_missing_backbone_keys_fail(tmp_path):
    partial = {k: v for k, v in fresh_state(0).items() if not k.startswith("blocks.")}
    torch.save(partial, tmp_path / "partial.pth")
    audit = inspect_checkpoint(tmp_path / "partial.pth", arch=ARCH).load_audit
    assert not audit["passed"] and 0 < audit["fraction_supplied"] < 0.5
    assert "would stay at their init" in audit["problem"]


def test_changed_norm_parameters_count_as_training_with_arch(tmp_path):
    state = fresh_state(0)
    for key in state:
        if ".norm" in key:
            state[key] = state[key] + 0.05 * torch.randn_like(state[key])
    torch.save(state, tmp_path / "norms.pth")
    without = inspect_checkpoint(tmp_path / "norms.pth")
    with_arch = inspect_checkpoint(tmp_path / "norms.pth", arch=ARCH)
    assert without.verdict == RANDOM_INIT
    norm_tensors = [t for g in with_arch.groups for t in g.tensors if ".norm" in t.name]
    assert norm_tensors and all(t.looks_trained for t in norm_tensors)
