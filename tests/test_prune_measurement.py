"""The audit reads stored files: it finds revived weights, partly pruned channels and removed
channels whose weights are not zero, and measures sparsity from the checkpoint itself."""
import pytest
import torch

from harness import storage
from harness.models import create_model
from harness.prune.measurement import MeasurementError, measure_run, stored_accuracy
from harness.prune.masks import MaskSet
from harness.record import RunRecord, StateRecord


def _state(folder, index: int, vit, masks: list) -> StateRecord:
    names = MaskSet.dense(vit).names
    ckpt = storage.save_tensors(folder / f"state{index}.safetensors", vit.state_dict(), {})
    mpath = storage.save_tensors(folder / f"state{index}.masks.safetensors",
                                 {n: m.bool() for n, m in zip(names, masks)}, {})
    return StateRecord(index=index, checkpoint=str(ckpt), masks=str(mpath),
                       stored_correct=90, stored_n=100)


def _record(states: list) -> RunRecord:
    return RunRecord(run_id=f"audit-{id(states)}", source="engine", dataset="digits", num_classes=10,
                     model="vit_tiny_digits", spec={"prune": {"include_head": False}}, states=states,
                     in_chans=1)


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_digits", 10, 1)


def test_audit_of_clean_whole_channel_states(vit, tmp_path):
    dense = MaskSet.dense(vit)
    first = [torch.ones_like(m) for m in dense.masks]
    second = [m.clone() for m in first]
    second[2][5] = 0                              # neuron 5 of block 0 removed whole
    second[3][:, 5] = 0
    s0 = _state(tmp_path, 0, vit, first)
    dense.with_masks(second).apply()
    s1 = _state(tmp_path, 1, vit, second)
    a0, a1 = measure_run(_record([s0, s1]))
    assert (a0.sparsity, a0.revived) == (0.0, None)
    assert a1.zeros == 128 and a1.total == dense.total and a1.revived == 0 and a1.bad_channels == 0
    assert a1.left("neuron")["blocks.0.mlp"] == 255 and a1.left("head")["blocks.0.attn"] == 4
    assert stored_accuracy(s1) == (90, 100)


def test_audit_finds_revived_weights_partial_and_non_zero_removed_channels(vit, tmp_path):
    dense = MaskSet.dense(vit)
    first = [torch.ones_like(m) for m in dense.masks]
    first[2][5] = 0
    first[3][:, 5] = 0
    dense.with_masks(first).apply()
    s0 = _state(tmp_path, 0, vit, first)
    second = [m.clone() for m in first]
    second[0][0:16] = 0                           # only the q rows of head 0: a partial head
    second[2][9] = 0                              # neuron 9 removed in the masks ...
    second[3][:, 9] = 0
    dense.with_masks(second).apply()
    with torch.no_grad():
        vit.blocks[0].mlp.fc2.weight[0, 9] = 0.5  # ... but one of its weights is not zero
        vit.blocks[0].mlp.fc1.weight[5, 3] = 0.25   # and a weight pruned before is alive again
    s1 = _state(tmp_path, 1, vit, second)
    _, a1 = measure_run(_record([s0, s1]))
    assert a1.revived == 1 and a1.bad_channels == 3   # the partial head, neurons 9 and 5
    assert a1.structure["blocks.0.attn"]["partial"] == 1
    assert a1.structure["blocks.0.mlp"]["removed_not_zero"] == 2


def test_audit_names_what_a_state_lacks(vit, tmp_path):
    state = _state(tmp_path, 0, vit, [torch.ones_like(m) for m in MaskSet.dense(vit).masks])
    state.masks = None
    with pytest.raises(MeasurementError, match="state 0 has no masks file"):
        measure_run(_record([state]))
