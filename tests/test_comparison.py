"""--arch: comparison with fresh inits of the architecture, and the load audit."""
import pytest
import torch
from safetensors.torch import save_file

from fixtures.checkpoints import fresh_state
from harness.forensics.inspection import inspect_checkpoint
from harness.forensics.judgement import FINETUNE_INIT, RANDOM_INIT, TRAINED
from tests.forensics_support import measure, trained_digits

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


@pytest.mark.slow
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
    assert "missing key(s) (they would stay at their init)" in audit["problem"]


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


def test_a_file_that_does_not_fit_gets_its_verdict_and_an_audit_saying_why(tmp_path, capsys):
    """`harness inspect FILE --arch vit_tiny_digits` on a timm ViT-S file used to crash in the
    pos-embed resample and print nothing."""
    from harness.cli import main
    from tests.forensics_support import vit_small_file

    path = vit_small_file(tmp_path)
    code = main(["inspect", str(path), "--arch", ARCH])
    out = capsys.readouterr().out
    assert code == 1 and "random-init: " in out
    audit_line = next(line for line in out.splitlines() if "load audit:" in line)
    assert f"the file does not fit {ARCH}: it holds 197 position tokens (1 prefix + 14x14 grid), " \
           f"width 384" in audit_line
    assert f"{ARCH} needs 16 position tokens (0 prefix + 4x4 grid), width 64" in audit_line


@pytest.mark.slow
def test_zero_size_tensors_never_decide_the_model_sizes(tmp_path):
    """A 169-byte file whose empty head (1e9 x 0) and stem (64 x 1e9 x 0 x 0) used to ask
    --arch for a 1e9-class, 1e9-channel model."""
    path = tmp_path / "empty_head.safetensors"
    save_file({"head.weight": torch.empty(10**9, 0),
               "patch_embed.proj.weight": torch.empty(64, 10**9, 0, 0)}, str(path))
    assert path.stat().st_size < 200
    run = measure(f"r = harness.forensics.inspection.inspect_checkpoint({str(path)!r}, "
                  f"arch={ARCH!r})\nprint('VERDICT', r.verdict, r.load_audit['num_classes'], "
                  f"r.load_audit['in_chans'])")
    assert "VERDICT unreadable 1000 3" in run["stdout"]
    assert run["extra_mib"] < 300 and run["cpu_seconds"] < 60, run


def test_sizes_over_the_caps_fail_the_audit_with_one_line(tmp_path, capsys):
    from harness.cli import main
    from harness.forensics.comparison import MAX_CLASSES

    state = fresh_state(0)
    state["head.weight"] = torch.randn(MAX_CLASSES + 1, 1)
    state["head.bias"] = torch.zeros(MAX_CLASSES + 1)
    torch.save(state, tmp_path / "wide.pth")
    result = inspect_checkpoint(tmp_path / "wide.pth", arch=ARCH)
    assert result.verdict == RANDOM_INIT                    # the weights are still judged
    assert result.load_audit["problem"] == (
        f"the file's head.weight ({MAX_CLASSES + 1}, 1) asks for a {MAX_CLASSES + 1}-class head, "
        f"more than {MAX_CLASSES}; pass --num-classes to compare with another head")
    assert result.problem.startswith("load audit failed: the file's head.weight")
    assert inspect_checkpoint(tmp_path / "wide.pth", arch=ARCH, num_classes=10).load_audit["passed"]
    code = main(["inspect", str(tmp_path / "wide.pth"), "--arch", ARCH,
                 "--num-classes", "1000000000"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--num-classes" in err
