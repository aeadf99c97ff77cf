"""RunRecord: what a run measured, per state and per epoch, and how it was made.

The engine (runs.py) and the log parsers (logs/) both produce this record; the suites judge it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: Optional[float] = None
    test_correct: Optional[int] = None
    test_n: Optional[int] = None
    lr: Optional[float] = None
    seconds: Optional[float] = None
    penalty: Optional[float] = None
    val_accuracy: Optional[float] = None    # on the held-out validation images (RunSpec.validation)
    val_correct: Optional[int] = None
    val_n: Optional[int] = None


def _best(epochs: list, field_name: str) -> Optional[EpochRecord]:
    """The first epoch with the highest ``field_name`` (None when no epoch has one)."""
    scored = [e for e in epochs if getattr(e, field_name) is not None]
    return max(scored, key=lambda e: getattr(e, field_name)) if scored else None


@dataclass
class StateRecord:
    """One state of a run (State 0 = dense training; later states prune then retrain)."""

    index: int
    epochs: list = field(default_factory=list)          # list[EpochRecord]
    first_batch_loss: Optional[float] = None
    first_batch_accuracy: Optional[float] = None
    intra_epoch: list = field(default_factory=list)     # [(step, steps, loss, accuracy)] of epoch 0
    test_n: Optional[int] = None
    sparsity: float = 0.0                               # fraction of prunable weights at zero, in %
    layer_sparsity: dict = field(default_factory=dict)
    structure: dict = field(default_factory=dict)
    penalty: list = field(default_factory=list)
    checkpoint: Optional[str] = None
    target_sparsity: Optional[float] = None             # the pruning schedule's sparsity, in %
    masks: Optional[str] = None                         # the state's masks (safetensors)
    sha256: dict = field(default_factory=dict)          # "checkpoint"/"masks" -> file digest
    stored_correct: Optional[int] = None                # the stored model's test hits (after a cut)
    stored_n: Optional[int] = None
    seconds: Optional[float] = None
    images_per_s: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    extra: dict = field(default_factory=dict)

    @property
    def stored_accuracy(self) -> Optional[float]:
        """Test accuracy of the model as stored at the end of the state (after RSST's cut)."""
        return 100.0 * self.stored_correct / self.stored_n if self.stored_n else None

    @property
    def best_epoch(self) -> Optional[EpochRecord]:
        return _best(self.epochs, "test_accuracy")

    @property
    def best_accuracy(self) -> Optional[float]:
        best = self.best_epoch
        return None if best is None else best.test_accuracy

    @property
    def best_validation_epoch(self) -> Optional[EpochRecord]:
        """The first epoch with the highest validation accuracy (None without a validation split)."""
        return _best(self.epochs, "val_accuracy")

    @property
    def best_sa(self) -> Optional[float]:
        """The research group's "best SA": test accuracy at the best-validation epoch (not the
        best test accuracy, :attr:`best_accuracy`); None without a validation split."""
        best = self.best_validation_epoch
        return None if best is None else best.test_accuracy

    @property
    def final_accuracy(self) -> Optional[float]:
        scored = [e for e in self.epochs if e.test_accuracy is not None]
        return scored[-1].test_accuracy if scored else None

    @property
    def first_epoch_accuracy(self) -> Optional[float]:
        first = self.epochs[0] if self.epochs else None
        return None if first is None else first.test_accuracy

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StateRecord":
        data = dict(data)
        data["epochs"] = [EpochRecord(**e) for e in data.get("epochs", [])]
        data["intra_epoch"] = [tuple(x) for x in data.get("intra_epoch", [])]
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RunRecord:
    """A whole run: its spec (or the arguments a log printed), its states and its provenance."""

    run_id: str
    source: str                       # "engine" or "log:<format>"
    dataset: str
    num_classes: int
    model: str
    spec: dict = field(default_factory=dict)
    init: Optional[str] = None
    claims_pretrained: bool = False
    states: list = field(default_factory=list)   # list[StateRecord]
    init_audit: Optional[dict] = None
    environment: dict = field(default_factory=dict)
    complete: bool = True
    notes: dict = field(default_factory=dict)
    in_chans: Optional[int] = None    # the input the model was built for (engine runs)
    image_size: Optional[int] = None

    def state(self, index: int) -> Optional[StateRecord]:
        for s in self.states:
            if s.index == index:
                return s
        return None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["states"] = [s.to_dict() for s in self.states]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        data = dict(data)
        data["states"] = [StateRecord.from_dict(s) for s in data.get("states", [])]
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
