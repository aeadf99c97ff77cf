"""Safe reading: formats, containers, prefixes, metadata; unsafe pickles refused without running
and named as torch refuses them; truncated, empty and non-checkpoint files unreadable; names that
are not UTF-8 read by descriptor; hostile sizes refused in bounded memory and time."""
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as safetensors_bytes, save_file

from fixtures.checkpoints import RunsCode
from harness.checkpoint.reader import (UnreadableCheckpoint, UnsafeCheckpoint, is_checkpoint_path,
                                      read_checkpoint)
from tests.forensics_support import (decoy_pickle, globals_a_pickle_imports, measure, torch_zip,
                                     write_zip)

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


@pytest.mark.parametrize("decoy", [("torch._utils", "_rebuild_tensor_v2"), ("builtins", "print")])
def test_stack_global_from_the_memo_is_named_not_the_decoy_strings(tmp_path, decoy):
    """The pickle spells a harmless global last but imports os.system from memoised strings;
    torch refuses it without naming any global. The last-two-strings scan named the decoy
    (builtins.print) or found nothing (the torch global is allowed)."""
    sentinel = tmp_path / "ran.txt"
    data = decoy_pickle(f"touch {sentinel}", decoy)
    assert globals_a_pickle_imports(data) == [f"{os.system.__module__}.system"]
    torch_zip(tmp_path / "decoy.pth", data)
    with open(tmp_path / "legacy.pth", "wb") as fh:      # the same pickle outside a zip
        fh.write(data)
    for name in ("decoy.pth", "legacy.pth"):
        with pytest.raises(UnsafeCheckpoint) as info:
            read_checkpoint(tmp_path / name)
        assert info.value.blocked == f"{os.system.__module__}.system", str(info.value)
        assert ".".join(decoy) not in str(info.value)
    assert not sentinel.exists()


def test_the_global_is_the_one_torch_refused(tmp_path):
    class CallsEval:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    torch.save({"state_dict": STATE, "x": CallsEval()}, tmp_path / "eval.pth")
    with pytest.raises(UnsafeCheckpoint, match=r"torch refused the global builtins\.eval") as info:
        read_checkpoint(tmp_path / "eval.pth")
    assert info.value.blocked == "builtins.eval"


def test_a_protocol_4_state_dict_is_unreadable_not_unsafe(tmp_path):
    torch.save({"state_dict": STATE}, tmp_path / "p4.pth", pickle_protocol=4)
    with pytest.raises(UnreadableCheckpoint, match=r"Unsupported operand 149 \(FRAME, pickle "
                                                   r"protocol 4.*no unsafe global found"):
        read_checkpoint(tmp_path / "p4.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_file_name_that_is_not_utf8_gets_its_real_verdict(tmp_path, suffix):
    raw = os.fsencode(tmp_path) + b"/weights_\xff\xfe" + suffix.encode()
    with open(raw, "wb") as fh:
        if suffix == ".pth":
            torch.save({"state_dict": STATE}, fh)
        else:
            fh.write(safetensors_bytes(STATE))
    ckpt = read_checkpoint(raw)
    assert set(ckpt.tensors) == set(STATE) and ckpt.path == os.fsdecode(raw)
    assert set(read_checkpoint(os.fsdecode(raw)).tensors) == set(STATE)


@pytest.mark.slow
def test_a_refused_pickle_beside_1_gib_members_is_scanned_in_bounded_memory(tmp_path):
    """A protocol-4 pickle (torch names no global) in a zip with two 1 GiB members, one named
    like a pickle: the scan used to read every .pkl member whole (+1 GiB)."""
    path = tmp_path / "big_members.pth"
    data = pickle.dumps({"x": RunsCode(f"touch {tmp_path / 'ran'}")}, protocol=4)
    torch_zip(path, data, (("archive/extra.pkl", 1 << 30), ("archive/data/0", 1 << 30)))
    run = measure(f"from harness.checkpoint.reader import UnsafeCheckpoint, read_checkpoint\n"
                  f"try:\n    read_checkpoint({str(path)!r})\n"
                  f"except UnsafeCheckpoint as exc:\n    print('BLOCKED', exc.blocked)")
    assert f"BLOCKED {os.system.__module__}.system" in run["stdout"]
    assert run["extra_mib"] < 200 and run["cpu_seconds"] < 60, run
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
def test_a_huge_pickle_or_compressed_members_are_refused_before_loading(tmp_path):
    big = tmp_path / "big_pickle.pth"
    torch_zip(big, b"", ())
    write_zip(big, [("archive/data.pkl", 1 << 30), ("archive/version", b"3\n")])
    deflated = tmp_path / "bomb.pth"
    torch.save({"state_dict": STATE}, deflated)
    with zipfile.ZipFile(deflated, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/99", bytes(100 << 20))   # 100 MiB of zeros, ~100 KB packed
    assert deflated.stat().st_size < 1 << 20
    run = measure("from harness.checkpoint.reader import UnreadableCheckpoint, read_checkpoint\n"
                  f"for path in ({str(big)!r}, {str(deflated)!r}):\n"
                  "    try:\n        read_checkpoint(path)\n"
                  "    except UnreadableCheckpoint as exc:\n        print('REFUSED', exc)")
    assert "its pickle archive/data.pkl is 1024 MiB, more than the 32 MiB" in run["stdout"]
    assert "1 compressed member(s) would expand to 100 MiB" in run["stdout"]
    assert run["extra_mib"] < 200 and run["cpu_seconds"] < 60, run


@pytest.mark.slow
def test_a_legacy_file_with_a_huge_pickle_is_refused_before_torch_reads_it(tmp_path):
    """Outside a zip, torch's loader reads pickles as they come: 40 MiB of NONE opcodes would
    cost it ~360 MB and 16 s."""
    path = tmp_path / "legacy.pth"
    path.write_bytes(b"\x80\x02" + b"N" * (40 << 20) + b".")
    run = measure("from harness.checkpoint.reader import UnreadableCheckpoint, read_checkpoint\n"
                  f"try:\n    read_checkpoint({str(path)!r})\n"
                  "except UnreadableCheckpoint as exc:\n    print('REFUSED', exc)")
    assert "its pickles run past 32 MiB, more than this reader accepts" in run["stdout"]
    assert run["extra_mib"] < 200 and run["cpu_seconds"] < 60, run
    with open(tmp_path / "old.pth", "wb") as fh:           # the legacy format itself still reads
        torch.save({"state_dict": STATE}, fh, _use_new_zipfile_serialization=False)
    assert set(read_checkpoint(tmp_path / "old.pth").tensors) == set(STATE)


@pytest.mark.slow
def test_views_are_checked_against_their_storage_before_any_copy(tmp_path):
    """A stride-0 view: an 18 KB file whose 30000 x 30000 tensor is 3.6 GB when flattened; and
    an overlapping as_strided view that is no broadcast."""
    torch.save({"blocks.0.w": torch.zeros(1).expand(30000, 30000)}, tmp_path / "expanded.pth")
    torch.save({"blocks.0.w": torch.randn(60000).as_strided((30000, 30000), (1, 1))},
               tmp_path / "strided.pth")
    assert (tmp_path / "expanded.pth").stat().st_size < 20_000
    run = measure("from harness.forensics.inspection import inspect_checkpoint\n"
                  f"for name in ('expanded.pth', 'strided.pth'):\n"
                  f"    r = inspect_checkpoint({str(tmp_path)!r} + '/' + name)\n"
                  "    print('VERDICT', name, r.verdict, r.summary)")
    assert "VERDICT expanded.pth untrained-constant all 1 float tensors are exact constants (0)" \
        in run["stdout"]
    assert "VERDICT strided.pth unreadable" in run["stdout"]
    assert "is a view of 900000000 elements over a storage of 60000 (overlapping strides " \
           "(1, 1)); refused rather than copied" in run["stdout"]
    assert run["extra_mib"] < 200 and run["cpu_seconds"] < 60, run


def test_zip_member_count_is_bounded(tmp_path, monkeypatch):
    import harness.checkpoint.reader as reader

    torch.save({f"blocks.{i}.w": torch.randn(4) for i in range(8)}, tmp_path / "many.pth")
    monkeypatch.setattr(reader, "MAX_ZIP_MEMBERS", 5)
    with pytest.raises(UnreadableCheckpoint, match=r"a zip of \d+ members, more than the 5"):
        read_checkpoint(tmp_path / "many.pth")


def test_tensor_keys_must_be_strings(tmp_path):
    torch.save({3: torch.randn(4, 4)}, tmp_path / "int_keys.pth")
    with pytest.raises(UnreadableCheckpoint, match="a tensor's key is a int"):
        read_checkpoint(tmp_path / "int_keys.pth")
