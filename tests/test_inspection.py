"""One file judged end to end: claims by name, metadata or --init; verdicts never from names;
folders searched; the harness Verdict of a claim; every file of a batch judged, whatever the
others hold; names and keys escaped for the terminal, strict JSON."""
import json
import os
import shutil
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from fixtures.checkpoints import fresh_state
from harness.forensics.inspection import (claim_verdict, find_checkpoints, inspect_checkpoint)
from harness.forensics.judgement import RANDOM_INIT, TRAINED, UNREADABLE


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


def _odd_files(folder) -> dict:
    """Files torch's weights-only loader accepts that the evidence used to raise on (each one
    aborted the whole batch), beside one good file: name -> words its verdict must hold."""
    good = fresh_state(0)
    w = good["blocks.0.attn.qkv.weight"]
    odd = {
        "sparse.pth": ({"w": w.to_sparse()}, "has layout sparse_coo"),
        "csr.pth": ({"w": w.to_sparse_csr()}, "has layout sparse_csr"),
        "meta.pth": ({"w": torch.empty(8, 8, device="meta")}, "is on the meta device"),
        "complex.pth": ({"w": torch.randn(8, 8, dtype=torch.complex64)}, "dtype complex64"),
        "int_keys.pth": ({3: w}, "a tensor's key is a int"),
        "overlap.pth": ({"w": torch.randn(200).as_strided((100, 100), (1, 1))},
                        "overlapping strides"),
    }
    if hasattr(torch, "float4_e2m1fn_x2"):
        packed = torch.zeros(8, 8, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
        odd["float4.pth"] = ({"w": packed}, "dtype float4_e2m1fn_x2")
    for name, (state, _) in odd.items():
        torch.save(state, folder / name)
    torch.save({"state_dict": {**good, "scale": torch.tensor(1.5), "empty": torch.empty(0, 2**40)}},
               folder / "good.pth")
    return {name: words for name, (_, words) in odd.items()}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support")
def test_every_file_of_a_batch_gets_a_verdict(tmp_path, capsys):
    from harness.cli import main

    odd = _odd_files(tmp_path)
    code = main(["inspect", str(tmp_path), "--json"])
    results = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1 and set(results) == set(odd) | {"good.pth"}
    assert results["good.pth"]["verdict"] == RANDOM_INIT
    for name, words in odd.items():
        assert results[name]["verdict"] == UNREADABLE and words in results[name]["summary"], name
    code = main(["inspect", str(tmp_path), "--arch", "vit_tiny_digits"])
    table = capsys.readouterr().out
    assert table.count("unreadable: ") == len(odd) and f"{len(odd) + 1} file(s) inspected" in table


def test_names_and_keys_are_escaped_in_the_table_and_exact_in_json(tmp_path, capsys):
    from harness.cli import main

    name = "evil\x1b[2J\rok  [0.01 s]\x07.pth"
    key = "\x1b[32mPASS\x1b[0m\r.weight"                  # a group of its own in the table
    torch.save({key: torch.randn(64, 64), "norm.weight": torch.ones(64)}, tmp_path / name)
    raw = os.fsencode(tmp_path) + b"/bytes_\xff.pth"
    with open(raw, "wb") as fh:
        torch.save({"state_dict": fresh_state(0)}, fh)
    main(["inspect", str(tmp_path)])
    table = capsys.readouterr().out
    assert not any(c in table for c in "\x1b\r\x07") and "evil\\x1b[2J\\x0dok" in table
    assert "\\x1b[32mPASS\\x1b[0m\\x0d  " in table and "bytes_\\udcff.pth" in table
    assert "random-init: " in table.split("bytes_")[1]         # its real verdict, not unreadable
    main(["inspect", str(tmp_path), "--json"])
    paths = {r["path"] for r in json.loads(capsys.readouterr().out)}
    assert paths == {str(tmp_path / name), os.fsdecode(raw)}


def test_json_output_is_strict(tmp_path, capsys):
    """A matrix of values near 1e11 used to give kurtosis Infinity in the JSON."""
    from harness.cli import main

    torch.manual_seed(0)
    torch.save({"blocks.0.w": torch.randn(256, 256) * 1e11}, tmp_path / "huge_values.pth")
    main(["inspect", str(tmp_path), "--json"])

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    result = json.loads(capsys.readouterr().out, parse_constant=refuse)[0]
    assert result["verdict"] == RANDOM_INIT, result["summary"]


def _pruned(model: torch.nn.Module, amount: float) -> dict:
    """The state dict torch.nn.utils.prune leaves: global L1 pruning of every Linear/Conv2d
    weight (weight_orig + weight_mask) and an all-ones mask on the first bias (prune.identity)."""
    from torch.nn.utils import prune

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for m in layers],
                              pruning_method=prune.L1Unstructured, amount=amount)
    prune.identity(layers[0], "bias")
    return model.state_dict()


def _mask_evidence(inspection) -> list:
    return [t for g in inspection.groups + inspection.silent_groups for t in g.tensors
            if t.name.endswith("_mask")]


def test_a_pruned_random_init_is_random_and_its_masks_are_never_weights(tmp_path):
    """Masks of 0 and 1 used to be judged as weight matrices with learned structure (and an
    all-ones mask as an init constant): the pruned init read as partially trained."""
    from harness.models import create_model

    torch.manual_seed(0)
    state = _pruned(create_model("vit_tiny_digits", 10, 1), 0.8)
    assert any(k.endswith("weight_mask") for k in state) and "head.bias_mask" not in state
    torch.save(state, tmp_path / "pruned_init.pth")
    inspection = inspect_checkpoint(tmp_path / "pruned_init.pth")
    assert inspection.verdict == RANDOM_INIT, inspection.summary
    masks = _mask_evidence(inspection)
    assert len(masks) == sum(k.endswith("_mask") for k in state)
    assert all(t.kind == "mask" and not t.judged for t in masks)
    originals = [t for g in inspection.groups for t in g.matrices if t.name.endswith("_orig")]
    assert originals and all(not t.looks_trained for t in originals)   # read as the weight


def test_a_pruned_trained_file_keeps_its_verdict_without_counting_masks(tmp_path):
    """The real trained LeNet (advertorch) pruned by torch.nn.utils.prune: the same groups and
    weight matrices as the unpruned file, none of them a mask."""
    lenet = Path(__file__).parent / "data" / "real" / "advertorch_lenet5_clntrained.pt"
    state = torch.load(lenet, map_location="cpu", weights_only=True)
    model = torch.nn.Module()
    for key in ("conv1", "conv2", "linear1", "linear2"):
        w = state[f"{key}.weight"]
        setattr(model, key, torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:]) if w.ndim == 4
                else torch.nn.Linear(w.shape[1], w.shape[0]))
    model.load_state_dict(state)
    torch.save(_pruned(model, 0.5), tmp_path / "pruned_lenet.pth")
    plain, pruned = inspect_checkpoint(lenet), inspect_checkpoint(tmp_path / "pruned_lenet.pth")
    assert pruned.verdict == plain.verdict == TRAINED, pruned.summary
    assert {g.name: (g.verdict, len(g.matrices)) for g in pruned.groups} == \
        {g.name: (g.verdict, len(g.matrices)) for g in plain.groups}
    assert len(_mask_evidence(pruned)) == 5 and all(t.kind == "mask" for t in _mask_evidence(pruned))
