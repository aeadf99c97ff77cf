"""MLPerf training logs in their three dialects, and what each benchmark's ``eval_accuracy`` is.

Dialects (each line may carry a prefix before the marker, e.g. ``0: `` from mpirun):

* v0.7 on: ``:::MLLOG {"key": ..., "value": ..., "metadata": {"epoch_num": ...}}``
* v0.6: ``:::MLL <time> <key>: {"value": ..., "metadata": {...}}``
* v0.5: ``:::MLPv0.5.0 <benchmark> <time> (<file>:<line>) <key>[: <value>]``, the value JSON
  (``eval_accuracy: {"epoch": 2, "value": 0.25}``) or bare text.

Each line becomes one event ``(key, value, metadata)`` in the v0.7 vocabulary: v0.5's
``train_epoch: N`` is an ``epoch_start`` of epoch N, ``eval_size`` and ``num_eval_examples`` are
``eval_samples``, v0.5's benchmark token is ``submission_benchmark``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

from harness.logs.bounds import MAX_EVENT_CHARS

MARKERS = (":::MLLOG", ":::MLL ", ":::MLPv")
_V06 = re.compile(r":::MLL\s+[-+.\deE]{1,40}\s+(\w{1,200})\s*:\s?")
_V05 = re.compile(r":::MLPv[\d.]{1,20}\s+(\w{1,100})\s+[-+.\deE]{1,40}\s+\([^)\s]{0,400}\)\s+"
                  r"(\w{1,200})(?:\s*:\s?)?")
_RENAMED = {"eval_size": "eval_samples", "num_eval_examples": "eval_samples",
            "preproc_num_eval_examples": "eval_samples", "train_epoch": "epoch_start"}


@dataclass(frozen=True)
class Metric:
    """What a benchmark's ``eval_accuracy`` measures: its name, whether it is the share of the
    ``eval_samples`` examples scored right (then a correct count and an interval apply), and
    whether its ``epoch_num`` counts training samples instead of epochs."""

    name: str
    proportion_of_samples: bool = False
    higher_is_better: bool = True
    epoch_num_counts_samples: bool = False
    dataset: Optional[str] = None      # the benchmark's dataset, when the log does not name one
    classes: int = 0


CLASSIFICATION = Metric("top-1 accuracy", proportion_of_samples=True)
# MLPerf benchmark names (submission_benchmark) whose eval_accuracy is no top-1 accuracy.
METRICS: dict[str, Metric] = {
    "resnet": Metric("top-1 accuracy", True, dataset="imagenet", classes=1000),
    "ssd": Metric("COCO box mAP", dataset="coco"),
    "retinanet": Metric("COCO box mAP", dataset="openimages"),
    "maskrcnn": Metric("COCO box mAP (mask mAP beside it)", dataset="coco"),
    "mask": Metric("COCO box mAP (mask mAP beside it)", dataset="coco"),
    "unet3d": Metric("mean Dice score", dataset="kits19"),
    "bert": Metric("masked-LM accuracy (share of masked tokens, not of eval_samples)",
                   epoch_num_counts_samples=True, dataset="wikipedia"),
    "gnmt": Metric("BLEU score"), "transformer": Metric("BLEU score"),
    "rnnt": Metric("word error rate", higher_is_better=False),
    "dlrm": Metric("ROC AUC"), "dlrm_dcnv2": Metric("ROC AUC"),
    "minigo": Metric("win rate against the reference"), "ncf": Metric("hit rate @10"),
    "gpt3": Metric("log perplexity", higher_is_better=False),
    "llama2_70b_lora": Metric("eval loss", higher_is_better=False),
    "stable_diffusion": Metric("FID / CLIP score"), "rgat": Metric("node accuracy"),
}


def metric_of(benchmark: Optional[str]) -> Metric:
    """The metric of ``benchmark``; a name the registry lacks is read as image classification
    (the harness's own runs) and said so in the record."""
    return METRICS.get(str(benchmark or "").strip().lower(), CLASSIFICATION)


def sniff(text: str) -> bool:
    return any(marker in text for marker in MARKERS)


Event = Union[tuple, str, None]


def event(text: str) -> Event:
    """(key, value, metadata) of an MLPerf line; None when it holds none; a string saying why
    when it is too long to read."""
    at = min((i for i in (text.find(m) for m in MARKERS) if i >= 0), default=-1)
    if at < 0:
        return None
    if len(text) - at > MAX_EVENT_CHARS:
        return (f"an MLLOG event of {len(text) - at:,} characters, over the {MAX_EVENT_CHARS:,} "
                f"an event is read up to; not read")
    if text.startswith(":::MLLOG", at):
        return _v07(text[at + len(":::MLLOG"):])
    if text.startswith(":::MLL ", at):
        return _v06(text, at)
    return _v05(text, at)


def _v07(body: str) -> Optional[tuple]:
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    meta = data.get("metadata")
    return data["key"], data.get("value"), meta if isinstance(meta, dict) else {}


def _v06(text: str, at: int) -> Optional[tuple]:
    m = _V06.match(text, at)
    if not m:
        return None
    data = _json(text[m.end():])
    if not isinstance(data, dict):
        return None
    meta = data.get("metadata")
    return _renamed(m[1], data.get("value"), meta if isinstance(meta, dict) else {})


def _v05(text: str, at: int) -> Optional[tuple]:
    m = _V05.match(text, at)
    if not m:
        return None
    if m[2] == "run_start":   # the benchmark token names the run: an argument before it starts
        return "run_start", None, {"benchmark": m[1]}
    rest = text[m.end():].strip()
    value = _json(rest) if rest else None
    if value is _BAD:
        value = rest
    meta: dict = {}
    if isinstance(value, dict) and "value" in value:   # eval_accuracy: {"epoch": 2, "value": x}
        meta = {"epoch_num": value.get("epoch")} if "epoch" in value else {}
        value = value["value"]
    if m[2] == "train_epoch":
        meta, value = {"epoch_num": value}, None
    if m[2] == "run_stop" and isinstance(value, dict):
        meta = {"status": "success" if str(value.get("success")).lower() == "true" else "aborted"}
    return _renamed(m[2], value, meta)


def _renamed(key: str, value: Any, meta: dict) -> tuple:
    return _RENAMED.get(key, key), value, meta


_BAD = object()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _BAD
