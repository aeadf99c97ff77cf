"""The runs store checks what it reads back: damaged files are retrained, never reused; paths
are relative to the store, so a moved or copied reports folder reads its own files."""
import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from harness.runs import RunContext, get_or_run
from harness.spec import Recipe, RunSpec
from harness.store import RunStore, StoreWarning

SPEC = RunSpec(model="vit_tiny_digits", dataset="digits", seed=0,
               recipe=Recipe(epochs=1, batch_size=128, augment="none", eval_batch_size=512))


def ctx(root):
    return RunContext(device=torch.device("cpu"), reports_dir=root, progress=False)


@pytest.fixture
def stored(tmp_path, one_thread):
    record = get_or_run(SPEC, ctx(tmp_path))
    return tmp_path, record


def test_record_keeps_paths_relative_to_the_store_and_checksums(stored):
    root, record = stored
    data = json.loads((root / "runs" / record.run_id / "record.json").read_text())
    state = data["states"][0]
    assert state["checkpoint"] == f"{record.run_id}/state0.safetensors"
    assert len(state["sha256"]["checkpoint"]) == 64


def test_truncated_record_json_resumes_from_intact_states(stored):
    root, record = stored
    path = root / "runs" / record.run_id / "record.json"
    path.write_text(path.read_text()[:40])
    mtime = (root / "runs" / record.run_id / "state0.safetensors").stat().st_mtime_ns
    with pytest.warns(StoreWarning, match=r"record.json: unreadable \(JSONDecodeError"):
        again = get_or_run(SPEC, ctx(root))
    assert again.notes["resumed_after_state"] == 0          # nothing trained again
    assert (root / "runs" / record.run_id / "state0.safetensors").stat().st_mtime_ns == mtime
    assert any("record.json" in r for r in again.notes["store_repairs"])


def test_truncated_checkpoint_with_intact_record_is_trained_again(stored):
    root, record = stored
    ckpt = root / "runs" / record.run_id / "state0.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.warns(StoreWarning, match="changed since it was stored"):
        again = get_or_run(SPEC, ctx(root))
    assert not again.notes["reused"] and again.notes["resumed_after_state"] is None
    load_file(again.state(0).checkpoint)                    # a whole file again
    assert again.state(0).best_epoch.test_correct == record.state(0).best_epoch.test_correct


def test_a_moved_reports_folder_reads_its_own_files(stored, tmp_path_factory):
    root, record = stored
    moved = tmp_path_factory.mktemp("moved") / "reports"
    shutil.copytree(root, moved)
    shutil.rmtree(root / "runs")                            # the original is gone
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        again = get_or_run(SPEC, ctx(moved))
    assert again.notes["reused"]
    assert again.state(0).checkpoint == str(moved / "runs" / record.run_id / "state0.safetensors")


def test_a_state_json_that_is_not_a_record_is_not_reused(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "state0.json").write_text("[1, 2]")
    with pytest.warns(StoreWarning, match="holds list, not a record"):
        assert store.states("k") == []
