"""RunSpec: the frozen description of one run, and its stable hash.

Every setting that changes what a run computes lives here (model, dataset, init, recipe,
pruning schedule, seed); the hash of a spec, the harness version and the device type keys the
runs store. Values are validated once, here, with errors that name the field, the expectation
and the value received.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Optional

from harness import __version__

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant", "step")
AUGMENTS = ("none", "crop_flip", "crop")


class SpecError(ValueError):
    """A RunSpec field holds a value the engine cannot run."""


def _require(cond: bool, cls: str, name: str, expected: str, value: Any) -> None:
    if not cond:
        raise SpecError(f"{cls}.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class Recipe:
    """One training phase: optimiser, schedule, batch and augmentation."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    milestones: tuple = ()
    label_smoothing: float = 0.0
    augment: str = "crop_flip"
    crop_padding: int = 4
    eval_batch_size: int = 1024
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        c = "Recipe"
        _require(isinstance(self.epochs, int) and self.epochs >= 1, c, "epochs", "an int >= 1", self.epochs)
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, c, "batch_size",
                 "an int >= 1", self.batch_size)
        _require(self.lr > 0, c, "lr", "> 0", self.lr)
        _require(self.optimizer in OPTIMIZERS, c, "optimizer", f"one of {OPTIMIZERS}", self.optimizer)
        _require(self.schedule in SCHEDULES, c, "schedule", f"one of {SCHEDULES}", self.schedule)
        _require(self.augment in AUGMENTS, c, "augment", f"one of {AUGMENTS}", self.augment)
        _require(0 <= self.warmup_epochs < self.epochs, c, "warmup_epochs",
                 f"in [0, epochs={self.epochs})", self.warmup_epochs)
        _require(0 <= self.label_smoothing < 1, c, "label_smoothing", "in [0, 1)", self.label_smoothing)
        _require(self.weight_decay >= 0, c, "weight_decay", ">= 0", self.weight_decay)
        _require(all(0 < m < self.epochs for m in self.milestones), c, "milestones",
                 f"epochs inside (0, {self.epochs})", self.milestones)


@dataclass(frozen=True)
class PruneSpec:
    """An iterative pruning schedule: states 1..N each prune ``rate`` of the remaining weights."""

    method: str = "imp"
    states: int = 3
    rate: float = 0.2
    scope: str = "global"
    rewind: str = "init"
    criterion: str = "l1"
    # structure (Refill / RSST)
    channel_criterion: str = "l1"
    # RSST penalty schedule
    reg_schedule: str = "x"
    reg_exponents: float = 4.0
    reg_granularity: float = 1e-4
    reg_limit: float = 1e-2
    state_recipe: Optional[Recipe] = None

    def __post_init__(self) -> None:
        c = "PruneSpec"
        _require(isinstance(self.states, int) and self.states >= 1, c, "states", "an int >= 1", self.states)
        _require(0 < self.rate < 1, c, "rate", "in (0, 1)", self.rate)
        _require(self.scope in ("global", "layer"), c, "scope", "'global' or 'layer'", self.scope)


@dataclass(frozen=True)
class RunSpec:
    """What to train: everything that changes the numbers a run produces."""

    model: str
    dataset: str
    recipe: Recipe = field(default_factory=Recipe)
    init: Optional[str] = None
    seed: int = 0
    image_size: Optional[int] = None
    prune: Optional[PruneSpec] = None
    label: str = ""

    def __post_init__(self) -> None:
        _require(isinstance(self.model, str) and bool(self.model), "RunSpec", "model",
                 "a model name", self.model)
        _require(isinstance(self.dataset, str) and bool(self.dataset), "RunSpec", "dataset",
                 "a dataset name", self.dataset)
        _require(isinstance(self.seed, int), "RunSpec", "seed", "an int", self.seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def claims_pretrained(self) -> bool:
        """A run started from a given init claims a pretrained start (DESIGN: the --init of a run)."""
        return self.init is not None

    def stable_hash(self, *, device_type: str = "cpu", init_digest: str = "",
                    model_definition: str = "") -> str:
        """Hex digest of the spec, the harness version, the device type, the init file's bytes
        and the model's definition (so editing a model variant never reuses a stale run).

        The label is presentation only and does not enter the hash.
        """
        payload = {"spec": {k: v for k, v in _canonical(self).items() if k != "label"},
                   "harness": __version__, "device": device_type, "init_sha256": init_digest,
                   "model": model_definition}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: _canonical(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return obj  # json writes 1.0 as 1.0 consistently
    return obj


def spec_from_dict(data: dict) -> RunSpec:
    """Rebuild a RunSpec from :meth:`RunSpec.to_dict` output (stored records)."""
    data = dict(data)
    data["recipe"] = _recipe_from(data.get("recipe"))
    if data.get("prune"):
        prune = dict(data["prune"])
        if prune.get("state_recipe"):
            prune["state_recipe"] = _recipe_from(prune["state_recipe"])
        data["prune"] = PruneSpec(**prune)
    return RunSpec(**data)


def _recipe_from(data: Optional[dict]) -> Recipe:
    data = dict(data or {})
    if "milestones" in data:
        data["milestones"] = tuple(data["milestones"])
    return Recipe(**data)
