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



class SpecError(ValueError):
    """A RunSpec field holds a value the engine cannot run."""


def _require(cond: bool, cls: str, name: str, expected: str, value: Any) -> None:
    if not cond:
        raise SpecError(f"{cls}.{name} must be {expected}, got {value!r}")


def _one_of(value: Any, registry: dict, cls: str, name: str) -> None:
    """``value`` must be a key of ``registry`` (the registry owns its vocabulary)."""
    _require(value in registry, cls, name, f"one of {tuple(registry)}", value)


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
        from harness.data.batches import AUGMENTS
        from harness.train import LR_SCHEDULES, OPTIMIZERS

        _one_of(self.optimizer, OPTIMIZERS, c, "optimizer")
        _one_of(self.schedule, LR_SCHEDULES, c, "schedule")
        _one_of(self.augment, AUGMENTS, c, "augment")
        _require(0 <= self.warmup_epochs < self.epochs, c, "warmup_epochs",
                 f"in [0, epochs={self.epochs})", self.warmup_epochs)
        _require(0 <= self.label_smoothing < 1, c, "label_smoothing", "in [0, 1)", self.label_smoothing)
        _require(self.weight_decay >= 0, c, "weight_decay", ">= 0", self.weight_decay)
        _require(all(0 < m < self.epochs for m in self.milestones), c, "milestones",
                 f"epochs inside (0, {self.epochs})", self.milestones)


REWINDS = ("init", "none")           # or "epoch:K": the weights after epoch K of State 0
RATE_OF = ("remaining", "all")
ADDED = {"hash": "omit_default"}     # a field added after runs were stored: hashed only when set


@dataclass(frozen=True)
class PruneSpec:
    """An iterative pruning schedule over States 1..``states``, each pruning then retraining.

    ``schedule="geometric"`` (the harness's own, the default): State k reaches sparsity
    ``1 - (1 - final_sparsity) ** (k / states)`` of the prunable weights; Refill and RSST remove
    whole channels from one pool (heads, neurons and other channels together, least important
    first, by weight count), and a channel removed once stays removed (masks nest).

    ``schedule="per_state_rate"`` (the research group's, Refill and RSST only): every state keeps
    ``floor(n * (1 - rate))`` attention heads and, in a separate pool, ``floor(n * (1 -
    mlp_rate))`` MLP neurons (at least one of each; other channels, e.g. a CNN's, use ``rate``),
    ranked among *all* channels of the pool, previously removed ones included (re-selected, not
    forced to nest). ``n`` is the pool's channels alive before the state (``rate_of="remaining"``:
    sparsity compounds, 1 - (1 - rate)^k) or all of them (``rate_of="all"``: the same count every
    state, as main_imp_fillback.py does). ``final_sparsity`` is not used by this schedule.

    ``method`` names an entry of :data:`harness.prune.methods.METHODS` (imp, refill, rsst);
    ``rewind`` is ``init`` (State 0's starting weights), ``epoch:K`` (its weights after epoch K)
    or ``none`` (keep training the pruned weights). ``channel_criterion`` ranks heads/neurons for
    Refill and RSST; the ``reg_*`` fields set RSST's penalty schedule (harness.prune.penalty).
    ``state_recipe`` trains States 1..N (default: the RunSpec's recipe).
    """

    method: str = "imp"
    states: int = 3
    final_sparsity: float = 0.5
    scope: str = "global"
    rewind: str = "init"
    include_head: bool = False
    channel_criterion: str = "l1"
    reg_schedule: str = "x"
    reg_exponents: float = 4.0
    reg_granularity: float = 5e-3
    reg_limit: float = 0.1
    state_recipe: Optional[Recipe] = None
    schedule: str = field(default="geometric", metadata=ADDED)
    rate: Optional[float] = field(default=None, metadata=ADDED)
    mlp_rate: Optional[float] = field(default=None, metadata=ADDED)
    rate_of: str = field(default="remaining", metadata=ADDED)

    def __post_init__(self) -> None:
        from harness.prune.magnitude import SCOPES
        from harness.prune.methods import METHODS
        from harness.prune.penalty import CURVES
        from harness.prune.refill import CRITERIA

        c = "PruneSpec"
        _one_of(self.method, METHODS, c, "method")
        _require(isinstance(self.states, int) and self.states >= 1, c, "states", "an int >= 1", self.states)
        _require(0 < self.final_sparsity < 1, c, "final_sparsity", "in (0, 1)", self.final_sparsity)
        _one_of(self.scope, SCOPES, c, "scope")
        _require(self.rewind in REWINDS or _rewind_epoch(self.rewind) is not None, c, "rewind",
                 "'init', 'none' or 'epoch:K' with K an int >= 0", self.rewind)
        _one_of(self.channel_criterion, CRITERIA, c, "channel_criterion")
        _one_of(self.reg_schedule, CURVES, c, "reg_schedule")
        _require(self.reg_exponents > 0, c, "reg_exponents", "> 0", self.reg_exponents)
        _require(self.reg_limit > 0, c, "reg_limit", "> 0", self.reg_limit)
        _require(0 < self.reg_granularity <= self.reg_limit, c, "reg_granularity",
                 f"in (0, reg_limit={self.reg_limit}]", self.reg_granularity)
        self._validate_schedule(c, METHODS[self.method].structured)

    def _validate_schedule(self, c: str, structured: bool) -> None:
        from harness.prune.methods import CHANNEL_SCHEDULES

        _one_of(self.schedule, CHANNEL_SCHEDULES, c, "schedule")
        _require(self.rate_of in RATE_OF, c, "rate_of", f"one of {RATE_OF}", self.rate_of)
        if self.schedule == "geometric":
            for name in ("rate", "mlp_rate"):
                _require(getattr(self, name) is None, c, name, "None with schedule='geometric' "
                         "(set schedule='per_state_rate', or final_sparsity)", getattr(self, name))
            return
        _require(structured, c, "method", "'refill' or 'rsst' with schedule='per_state_rate' (for "
                 "imp, a rate of the remaining weights is schedule='geometric' with final_sparsity="
                 "1-(1-rate)**states)", self.method)
        _require(_fraction(self.rate), c, "rate", "a number in (0, 1) with schedule='per_state_rate'",
                 self.rate)
        _require(self.mlp_rate is None or _fraction(self.mlp_rate), c, "mlp_rate",
                 "None (the same as rate) or a number in (0, 1)", self.mlp_rate)

    @property
    def unit_rates(self) -> dict:
        """per_state_rate: the rate of each channel pool (head, neuron, other channel)."""
        neuron = self.rate if self.mlp_rate is None else self.mlp_rate
        return {"head": self.rate, "neuron": neuron, "channel": self.rate}

    @property
    def nested(self) -> bool:
        """Whether a weight pruned at one state stays pruned at every later one."""
        return self.schedule == "geometric"

    def sparsity_at(self, state: int, shares: Optional[dict] = None) -> float:
        """Target fraction of prunable weights at zero after State ``state`` (0 for State 0).

        per_state_rate: the nominal target (channel counts not rounded down), each pool's removed
        fraction weighted by ``shares`` (fraction of the prunable weights in heads, neurons and
        other channels: :func:`harness.prune.structure.unit_shares`); without ``shares`` only
        when every pool has the same rate.
        """
        if state == 0:
            return 0.0
        if self.schedule == "geometric":
            return 1.0 - (1.0 - self.final_sparsity) ** (state / self.states)
        removed = {u: 1.0 - (1.0 - r) ** (state if self.rate_of == "remaining" else 1)
                   for u, r in self.unit_rates.items()}
        if shares is None:
            _require(len(set(removed.values())) == 1, "PruneSpec", "mlp_rate", "equal to rate for a "
                     "model-free sparsity target (pass the model's unit shares)", self.mlp_rate)
            return removed["head"]
        return sum(removed[u] * share for u, share in shares.items())

    @property
    def rewind_epoch(self) -> Optional[int]:
        """The State-0 epoch whose weights each state rewinds to (0: the init), None: no rewind."""
        if self.rewind == "none":
            return None
        return 0 if self.rewind == "init" else _rewind_epoch(self.rewind)


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1


def _rewind_epoch(text: str) -> Optional[int]:
    head, _, tail = str(text).partition(":")
    return int(tail) if head == "epoch" and tail.isdigit() else None


@dataclass(frozen=True)
class RunSpec:
    """What to train: everything that changes the numbers a run produces.

    ``validation`` > 0 holds out the last ``validation`` images of the training split (in the
    dataset's order, as the research group's 45k/5k CIFAR split does); every epoch is then also
    evaluated on them, and a state's "best SA" is its test accuracy at the best-validation epoch
    (:attr:`harness.record.StateRecord.best_sa`).

    ``inputs``: further files (relative to the project root) whose bytes key the run, beside the
    code of a user's model and dataset factories and of the project files they import
    (:mod:`harness.closure`), which key it anyway.
    """

    model: str
    dataset: str
    recipe: Recipe = field(default_factory=Recipe)
    init: Optional[str] = None
    seed: int = 0
    image_size: Optional[int] = None
    prune: Optional[PruneSpec] = None
    label: str = ""
    validation: int = field(default=0, metadata=ADDED)
    inputs: tuple = field(default=(), metadata=ADDED)

    def __post_init__(self) -> None:
        inputs = self.inputs
        _require(isinstance(inputs, (list, tuple)) and all(isinstance(n, str) and n for n in inputs),
                 "RunSpec", "inputs", "a list of file paths relative to the project root", inputs)
        object.__setattr__(self, "inputs", tuple(inputs))
        _require(isinstance(self.model, str) and bool(self.model), "RunSpec", "model",
                 "a model name", self.model)
        _require(isinstance(self.validation, int) and not isinstance(self.validation, bool)
                 and self.validation >= 0, "RunSpec", "validation",
                 "an int >= 0 (training images held out, the last ones in the dataset's order)",
                 self.validation)
        _require(isinstance(self.dataset, str) and bool(self.dataset), "RunSpec", "dataset",
                 "a dataset name", self.dataset)
        _require(isinstance(self.seed, int), "RunSpec", "seed", "an int", self.seed)
        epoch = self.prune.rewind_epoch if self.prune else None
        _require(epoch is None or epoch < self.recipe.epochs, "PruneSpec", "rewind",
                 f"an epoch of State 0 (< recipe.epochs={self.recipe.epochs})",
                 self.prune.rewind if self.prune else None)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def claims_pretrained(self) -> bool:
        """A run started from a given init claims a pretrained start (DESIGN: the --init of a run)."""
        return self.init is not None

    def stable_hash(self, *, device_type: str = "cpu", init_digest: str = "",
                    model_definition: str = "", code: Optional[dict] = None) -> str:
        """Hex digest of the spec, the harness version, the device type, the init file's bytes,
        the model's definition (so editing a model variant never reuses a stale run) and the
        code the run computes from (``code``: the digests of a user's factories' project files
        and of ``inputs``, :func:`harness.closure.code_key`; hashed only when there is some, so
        runs of harness and timm models on registered datasets keep their keys).

        The label is presentation only and does not enter the hash.
        """
        payload = {"spec": {k: v for k, v in _canonical(self).items() if k != "label"},
                   "harness": __version__, "device": device_type, "init_sha256": init_digest,
                   "model": model_definition}
        if code:
            payload["code"] = code
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(obj: Any) -> Any:
    """The hashed form: every field, except a field added after runs were stored (``ADDED``)
    while it holds its default, so stored runs keep their keys."""
    if is_dataclass(obj):
        return {f.name: _canonical(getattr(obj, f.name)) for f in fields(obj)
                if not (f.metadata.get("hash") == "omit_default" and getattr(obj, f.name) == f.default)}
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
