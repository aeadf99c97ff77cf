"""One checkpoint file judged: read it safely, gather evidence, give the verdicts.

``inspect_checkpoint(path)`` never raises for a bad file: an unsafe pickle, a truncated file or
NaN weights are verdicts (``unsafe``, ``unreadable``, ``non-finite``) with the reason. A file
*claims* to be pretrained by its name, by its metadata, or because a run uses it as ``--init``;
the claim decides only whether the verdict contradicts it, never the verdict itself.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from harness.expect import Expectation, Verdict
from harness.threads import cpu_threads
from harness.forensics.evidence import UnjudgeableTensor, tensor_evidence
from harness.forensics.norms import with_norm_layers
from harness.checkpoint.reader import (CheckpointError, LoadedCheckpoint, PathLike,
                                      UnsafeCheckpoint, as_path, is_checkpoint_path,
                                      read_checkpoint)
from harness.forensics.judgement import (NON_FINITE, PRETRAINED_OK, UNREADABLE, UNSAFE, FileJudgement,
                                       judge)

_PRETRAINED = re.compile(r"pre[-_ ]?train", re.IGNORECASE)
_NOT_PRETRAINED = re.compile(r"(?:non|not|no|un)[-_ ]?pre[-_ ]?train", re.IGNORECASE)
_TRUE = ("1", "true", "yes", "y")
CLAIM_KEYS = ("claim", "kind", "description", "weights")   # free-text fields that may claim it


@dataclass
class Inspection:
    path: str
    verdict: str
    summary: str
    seconds: float
    claim: Optional[str] = None
    groups: list = field(default_factory=list)          # list[GroupJudgement]
    unjudged: list = field(default_factory=list)
    silent_groups: list = field(default_factory=list)   # GroupJudgements of no-evidence groups
    container: Optional[str] = None
    stripped_prefixes: list = field(default_factory=list)
    has_ema: bool = False
    blocked: Optional[str] = None                       # the global an unsafe pickle names
    load_audit: Optional[dict] = None
    backbone_trained_share: float = 0.0

    @property
    def problem(self) -> Optional[str]:
        """Why this file fails its claim (None when it does not)."""
        if self.verdict in (UNSAFE, UNREADABLE, NON_FINITE):
            return f"{self.verdict}: {self.summary}"
        if self.claim and self.verdict not in PRETRAINED_OK:
            return f"claims pretrained ({self.claim}) but is {self.verdict}: {self.summary}"
        if self.load_audit and not self.load_audit.get("passed", True):
            return f"load audit failed: {self.load_audit['problem']}"
        return None

    def line(self) -> str:
        return f"{self.verdict}: {self.summary}"

    def to_dict(self) -> dict:
        data = {"path": self.path, "verdict": self.verdict, "summary": self.summary,
                "seconds": round(self.seconds, 4), "claim": self.claim,
                "contradicts_claim": self.problem is not None, "problem": self.problem,
                "container": self.container, "stripped_prefixes": self.stripped_prefixes,
                "has_ema": self.has_ema, "groups": [g.to_dict() for g in self.groups],
                "no_evidence_groups": [g.to_dict() for g in self.silent_groups],
                "unjudged": self.unjudged}
        if self.blocked:
            data["blocked_global"] = self.blocked
        if self.load_audit is not None:
            data["load_audit"] = self.load_audit
        return data


def inspect_checkpoint(path: PathLike, *, claim: Optional[str] = None,
                       arch: Optional[str] = None, num_classes: Optional[int] = None
                       ) -> Inspection:
    """Load plus verdict, timed in-process. ``claim`` adds a claim (e.g. "the --init of a run")
    to the ones the file makes by name or metadata; ``arch`` adds the comparison with fresh
    inits of that architecture and the load audit (see :mod:`harness.forensics.comparison`).
    Never raises for a bad file: whatever stops the judgement is the file's verdict."""
    path = as_path(path)
    start = time.perf_counter()
    claims = [c for c in (claim, _named_claim(path)) if c]

    def failed(verdict: str, summary: str, blocked: Optional[str] = None) -> Inspection:
        return Inspection(str(path), verdict, summary, time.perf_counter() - start,
                          claim=_join(claims), blocked=blocked)
    try:
        return _judged(path, claims, arch, num_classes, start)
    except UnsafeCheckpoint as exc:
        return failed(UNSAFE, str(exc), exc.blocked)
    except CheckpointError as exc:
        return failed(UNREADABLE, str(exc))
    except UnjudgeableTensor as exc:
        return failed(UNREADABLE, f"{path}: {exc}")
    except Exception as exc:  # noqa: BLE001 -- the per-file boundary: one file's failure is
        # its own verdict, named, and never hides the other files of a batch
        return failed(UNREADABLE, f"{path}: the evidence code failed on this file "
                                  f"({type(exc).__name__}: {_first_line(exc)})")


def _judged(path: Path, claims: list, arch: Optional[str], num_classes: Optional[int],
            start: float) -> Inspection:
    ckpt = read_checkpoint(path)
    claims += [c for c in (_metadata_claim(ckpt.metadata),) if c]
    with cpu_threads(1):
        evidence = [tensor_evidence(name, t) for name, t in ckpt.tensors.items()]
        evidence = with_norm_layers(evidence, ckpt.tensors)
    audit = None
    if arch is not None:
        from harness.forensics.comparison import compare_with_arch
        evidence, audit = compare_with_arch(ckpt, evidence, arch, num_classes)
    judged = judge(evidence)
    return _inspection(path, ckpt, judged, time.perf_counter() - start, _join(claims), audit)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _inspection(path: Path, ckpt: LoadedCheckpoint, judged: FileJudgement, seconds: float,
                claim: Optional[str], audit: Optional[dict]) -> Inspection:
    return Inspection(str(path), judged.verdict, judged.summary, seconds, claim=claim,
                      groups=judged.groups, unjudged=judged.unjudged,
                      silent_groups=judged.silent, container=ckpt.container,
                      stripped_prefixes=list(ckpt.stripped_prefixes), has_ema=ckpt.has_ema,
                      load_audit=audit, backbone_trained_share=judged.backbone_trained_share)


def _named_claim(path: Path) -> Optional[str]:
    name = path.name
    return "named pretrained" if _PRETRAINED.search(name) and not _NOT_PRETRAINED.search(name) \
        else None


def _metadata_claim(metadata: dict) -> Optional[str]:
    for key, value in metadata.items():
        text = str(value).strip().lower()
        if _PRETRAINED.search(str(key)) and text in _TRUE:
            return f"metadata {key}={value}"
        if str(key).lower() in CLAIM_KEYS and _PRETRAINED.search(str(value)):
            return f"metadata {key}={value!r}"
    return None


def _join(claims: list) -> Optional[str]:
    return "; ".join(claims) if claims else None


def find_checkpoints(paths: Iterable[PathLike]) -> list[Path]:
    """Files as given; directories searched recursively for checkpoint files (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = as_path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and is_checkpoint_path(p))
        else:
            found.append(path)
    return found


def claim_verdict(inspection: Inspection, verdict_id: str) -> Verdict:
    """The harness Verdict of one file. A file that claims to be pretrained must have every
    backbone group trained (its verdict ``trained`` or ``finetune-init``): observed is that share
    in %, the bar 100%. A file that claims nothing must be readable, safe and finite."""
    name = Path(inspection.path).name
    evidence = {"note": inspection.line(), "verdict": inspection.verdict, "path": inspection.path,
                "claim": inspection.claim, "seconds": round(inspection.seconds, 4),
                "groups": {g.name: g.verdict for g in inspection.groups}}
    if inspection.load_audit is not None:
        evidence["load_audit"] = inspection.load_audit["summary"]
    broken = inspection.verdict in (UNSAFE, UNREADABLE, NON_FINITE)
    if inspection.claim:
        bar = Expectation(verdict_id, f"{name} ({inspection.claim}): backbone groups trained",
                          ">=", 100.0, "%")
        return bar.evaluate(0.0 if broken else inspection.backbone_trained_share, evidence)
    bar = Expectation(verdict_id, f"{name}: readable, safe and finite weights", "==", 1.0)
    return bar.evaluate(0.0 if broken else 1.0, evidence)
