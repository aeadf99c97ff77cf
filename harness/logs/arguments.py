"""The run arguments a log printed, read as the facts the suites need: dataset, classes, model,
init and the pretrained claim, and the recipe (epochs, lr, batch size)."""
from __future__ import annotations

import math
import re
from typing import Any, Optional

from harness.timmref import timm_ref

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10}
MAX_CLASSES = 10**6   # a printed num_classes above this is no class count (ImageNet-21k: 21,843)

# recipe field -> the argument names that carry it, in the formats the parsers read
_RECIPE_KEYS = {
    "epochs": ("epochs", "train_epochs", "num_epochs", "total_epochs"),
    "lr": ("lr", "opt_base_learning_rate", "learning_rate"),
    "batch_size": ("batch_size", "global_batch_size"),
    "optimizer": ("opt", "optimizer", "opt_name"),
    "weight_decay": ("weight_decay", "opt_weight_decay"),
    "warmup_epochs": ("warmup_epochs", "warmup", "opt_learning_rate_warmup_epochs"),
}
_INIT_KEYS = ("init", "initial_checkpoint", "init_checkpoint", "pretrained_path")
_EXPLICIT_CLAIM = "vit_pretrained"  # the research script's flag: its init file alone is no claim
_DATASET_KEYS = ("dataset", "data_set", "data")
_MODEL_KEYS = ("arch", "model", "model_name", "submission_benchmark")


def dataset_name(text: Any) -> Optional[str]:
    """'torch/cifar10', 'CIFAR-10', 'data/cifar100' -> 'cifar10', 'cifar100'; None when empty."""
    if not isinstance(text, str) or not text.strip():
        return None
    name = re.sub(r"[-_\s]", "", text.strip().rstrip("/").split("/")[-1].lower())
    return name or None


def num_classes(dataset: Optional[str], args: dict) -> int:
    """The argument ``num_classes`` when printed, else the dataset's; 0 when neither is known."""
    given = args.get("num_classes")
    if isinstance(given, int) and not isinstance(given, bool) and 1 < given <= MAX_CLASSES:
        return given
    return NUM_CLASSES.get(dataset or "", 0)


def first(args: dict, keys: tuple) -> Any:
    for key in keys:
        value = args.get(key)
        if value not in (None, ""):
            return value
    return None


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def pretrained_claim(args: dict, model: str) -> tuple[bool, Optional[str]]:
    """(claims a pretrained start, the init named). The research script's ``vit_pretrained``
    decides when printed (its ``init`` is also the random rewind point); otherwise a ``pretrained``
    flag (timm's hub weights) or a named init/checkpoint file is the claim."""
    init = first(args, _INIT_KEYS)
    init = str(init) if init is not None else None
    if _EXPLICIT_CLAIM in args:
        claims = truthy(args[_EXPLICIT_CLAIM])
    else:
        claims = truthy(args.get("pretrained")) or init is not None
    if claims and init is None:
        init = timm_ref(model)  # a pretrained flag without a file: the library's hub weights
    return claims, init


def recipe(args: dict) -> dict:
    found = {}
    for name, keys in _RECIPE_KEYS.items():
        value = first(args, keys)
        if value is not None:
            found[name] = _number(value) if name != "optimizer" else str(value)
    return found


def model_name(args: dict) -> str:
    value = first(args, _MODEL_KEYS)
    return str(value) if value is not None else "unknown"


def dataset_of(args: dict) -> Optional[str]:
    return dataset_name(first(args, _DATASET_KEYS))


def _number(value: Any) -> Any:
    """An argument as a number where it is one; a value no float holds (1e400, 10**400, nan)
    stays as its text, so no recipe is read from it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return value
    if not math.isfinite(number):
        return str(value)
    if number.is_integer() and not (isinstance(value, str) and "." in value) and abs(number) < 2**63:
        return int(number)
    return number
