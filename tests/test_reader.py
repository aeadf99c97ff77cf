"""Safe reading: formats, containers, prefixes, metadata; unsafe pickles refused without running;
truncated, empty and non-checkpoint files unreadable."""
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fixtures.checkpoints import RunsCode
from harness.forensics.reader import (UnreadableCheckpoint, UnsafeCheckpoint, is_checkpoint_path,
                                      read_checkpoint)

STATE = {"blocks.0.w": torch.randn(16, 16), "head.bias": torch.zeros(4)}


@pytest.mark.parametrize("key", ["state_dict", "model", "module", "state_dict_ema", "model_ema"])
def test_containers_are_found_and_named(tmp_path, key):
    path = tmp_path / "c.pth.tar"
    torch.save({key: STATE, "epoch": 7, "arch": "vit"}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.container == key and set(ckpt.tensors) == set(STATE)
    assert ckpt.metadata == {"epoch": 7, "arch": "vit"}


def test_ema_copy_is_reported_and_model_weights_preferred(tmp_path):
    path = tmp_path / "ema.pth"
    ema = {k: v + 1 for k, v in STATE.items()}
    torch.save({"state_dict": STATE, "state_dict_ema": ema}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.container == "state_dict" and ckpt.has_ema
    assert torch.equal(ckpt.tensors["blocks.0.w"], STATE["blocks.0.w"])


@pytest.mark.parametrize("prefixes", [["module."], ["_orig_mod."], ["model."], ["module.", "_orig_mod."]])
def test_wrapper_prefixes_are_stripped_and_reported(tmp_path, prefixes):
    joined = "".join(prefixes)
    path = tmp_path / "p.pt"
    torch.save({joined + k: v for k, v in STATE.items()}, path)
    ckpt = read_checkpoint(path)
    assert set(ckpt.tensors) == set(STATE) and ckpt.stripped_prefixes == prefixes


def test_safetensors_with_metadata(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(STATE, str(path), metadata={"pretrained": "true"})
    ckpt = read_checkpoint(path)
    assert ckpt.metadata == {"pretrained": "true"} and ckpt.container == "top level"


@pytest.mark.parametrize("legacy", [False, True])
def test_code_running_pickle_is_unsafe_and_never_runs(tmp_path, legacy):
    sentinel = tmp_path / "ran.txt"
    path = tmp_path / "evil.pth"
    payload = {"epoch": 1, "x": RunsCode(f"touch {sentinel}")}
    if legacy:   # a plain protocol-4 pickle: torch's loader stops at FRAME before any global
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=4)
    else:
        torch.save({"state_dict": STATE, **payload}, path)
    with pytest.raises(UnsafeCheckpoint) as info:
        read_checkpoint(path)
    assert info.value.blocked in ("posix.system", "os.system", "nt.system")
    assert info.value.blocked in str(info.value)
    assert not sentinel.exists()


def test_truncated_empty_and_foreign_files_are_unreadable(tmp_path):
    full = tmp_path / "full.pth"
    torch.save({"state_dict": STATE}, full)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    for path, words in [(cut, "cannot be read"), (empty, "empty file"), (text, "safetensors"),
                        (listing, "not a state dict"), (tmp_path / "missing.pth", "no such file")]:
        with pytest.raises(UnreadableCheckpoint, match=words):
            read_checkpoint(path)


def test_checkpoint_suffixes():
    for name in ["a.pth", "a.pth.tar", "a.pt", "a.bin", "a.ckpt", "a.safetensors"]:
        assert is_checkpoint_path(Path(name))
    assert not is_checkpoint_path(Path("a.json"))
