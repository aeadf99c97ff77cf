"""What the pruning suite checks on a run's stored files, not on the engine's own numbers.

For each state, from its checkpoint and masks (safetensors): the sparsity of the prunable weights
(exact zeros in the checkpoint), the weights pruned at the previous state that are alive again
(mask or weight), and per channel family the channels left, removed and partly pruned, and the
removed channels whose weights are not all zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


from harness.models import create_skeleton
from harness.prune.masks import MaskSet
from harness.prune.structure import families, summary
from harness.record import RunRecord, StateRecord


class MeasurementError(RuntimeError):
    """A stored state lacks what the audit reads (a checkpoint or masks file)."""


@dataclass
class StateMeasurement:
    index: int
    zeros: int
    total: int
    revived: Optional[int]                      # None for State 0
    structure: dict = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        return 100.0 * self.zeros / self.total

    @property
    def bad_channels(self) -> int:
        """Channels partly pruned, plus removed channels with a weight that is not zero."""
        return sum(f["partial"] + f["removed_not_zero"] for f in self.structure.values())

    def left(self, unit: str) -> dict:
        return {name: f["left"] for name, f in self.structure.items() if f["unit"] == unit}


def _load(path: Optional[str], what: str, index: int) -> dict:
    from safetensors.torch import load_file

    if not path:
        raise MeasurementError(f"state {index} has no {what} file recorded; rerun it with --rerun")
    return load_file(path)


def _layout(record: RunRecord, stored: set) -> tuple[list, list]:
    """The run's channel families and prunable weight names in model order, from its model built
    on the meta device (no weights)."""
    in_chans = record.in_chans
    if in_chans is None:
        raise MeasurementError(f"run {record.run_id} does not record its input channels; rerun it with --rerun")
    model = create_skeleton(record.model, record.num_classes, in_chans, record.image_size)
    include_head = bool((record.spec.get("prune") or {}).get("include_head"))
    masks = MaskSet.dense(model, include_head)
    if set(masks.names) != stored:
        raise MeasurementError(f"run {record.run_id}: stored masks cover {sorted(stored ^ set(masks.names))[:4]}"
                         f" differently from the prunable weights of {record.model}")
    return families(model, masks), masks.names


def measure_state(state: StateRecord, stored_masks: dict, layout: tuple, previous: Optional[dict]
                ) -> StateMeasurement:
    """The audit of one state from its checkpoint and masks (and the previous state's masks);
    ``layout`` is (families, weight names in model order)."""
    fams, names = layout
    weights = _load(state.checkpoint, "checkpoint", state.index)
    missing = [n for n in names if n not in weights]
    if missing:
        raise MeasurementError(f"state {state.index}: checkpoint {state.checkpoint} lacks masked weights {missing[:3]}")
    w = [weights[n] for n in names]
    zeros = sum(int((t == 0).sum()) for t in w)
    revived = None
    if previous is not None:
        revived = sum(int((~previous[n] & (stored_masks[n] | (weights[n] != 0))).sum()) for n in names)
    structure = summary(fams, [stored_masks[n] for n in names], w)
    return StateMeasurement(state.index, zeros, sum(t.numel() for t in w), revived, structure)


_CACHE: dict = {}


def measure_run(record: RunRecord) -> list[StateMeasurement]:
    """Every state of a pruning run, audited once per run (cached by run id and files)."""
    key = (record.run_id, tuple((s.checkpoint, s.masks) for s in record.states))
    if key not in _CACHE:
        layout, previous, audits = None, None, []
        for state in record.states:
            masks = _load(state.masks, "masks", state.index)
            layout = layout or _layout(record, set(masks))
            audits.append(measure_state(state, masks, layout, previous))
            previous = masks
        _CACHE[key] = audits
    return _CACHE[key]


def stored_accuracy(state: StateRecord) -> tuple[int, int]:
    """(correct, n) of the model as stored at the end of the state (after RSST's cut)."""
    if state.stored_n is None:
        raise MeasurementError(f"state {state.index} records no accuracy of its stored model")
    return state.stored_correct, state.stored_n
