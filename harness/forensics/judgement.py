"""Group and overall verdicts from per-tensor evidence, in the words `harness inspect` prints
(docs/forensics.md).

Tensors are grouped by module: the key up to its first numeric part (``blocks.3``,
``encoder.layer.5``, ``layer1.0``), else its first part (``patch_embed``, ``head``, ``norm``).
A group is ``trained`` when at least half of its judged tensors (its weight matrices; with
``--arch`` every tensor compared with fresh inits) show learned structure, at init otherwise
(``random-init``, or ``untrained-constant`` when all its tensors are exact constants). A group
with BatchNorm layers that vote (:mod:`harness.forensics.norms`) is judged by them instead: a
layer whose weight and bias moved is positive evidence of optimizer steps, one at its exact init
never saw a batch, while a weight matrix that looks random may just be briefly trained. A group
with nothing that carries evidence (one-element tensors, pruning masks, plain vectors, small
matrices whose scale fits no initialiser) is reported as ``no-evidence`` and left out of the
overall verdict. The overall
verdict: all judged groups trained -> ``trained``; none -> ``random-init``;
only classifier heads at init -> ``finetune-init``; otherwise ``partially-trained`` naming the
groups at init; ``no-evidence`` when floating-point tensors exist but none carries evidence
either way (calibration vectors only, small matrices whose scale fits no standard initialiser):
not "random", and no pretrained claim passes it; ``unreadable`` when no tensor holds
floating-point values to judge (integer, complex or empty tensors only). A classifier head is a
group named as one (``head``, ``fc``, ``classifier.1``, ...) or the group of the state dict's
structural head (:func:`harness.heads.state_dict_head`). Nothing here reads a file name.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterable, Optional

from harness.forensics.evidence import (CONSTANT_TOLERANCE, KIND_CONSTANT, KIND_MASK,
                                        KIND_MATRIX, KIND_NON_FINITE, KIND_SKIPPED, ONE_ELEMENT,
                                        TensorEvidence)
from harness.heads import state_dict_head

TRAINED = "trained"
RANDOM_INIT = "random-init"
FINETUNE_INIT = "finetune-init"
PARTIALLY_TRAINED = "partially-trained"
UNTRAINED_CONSTANT = "untrained-constant"
NON_FINITE = "non-finite"
UNREADABLE = "unreadable"
UNSAFE = "unsafe"
NO_EVIDENCE = "no-evidence"
VERDICTS = (TRAINED, RANDOM_INIT, FINETUNE_INIT, PARTIALLY_TRAINED, UNTRAINED_CONSTANT,
            NO_EVIDENCE, NON_FINITE, UNREADABLE, UNSAFE)
AT_INIT = (RANDOM_INIT, UNTRAINED_CONSTANT)
# What a file that claims to be pretrained may be: trained, or trained with a fresh head.
PRETRAINED_OK = (TRAINED, FINETUNE_INIT)

# Task heads that a transfer start re-initialises (a BERT pooler is dropped by sentence
# encoders and stays at its init in e.g. all-MiniLM-L6-v2).
HEAD_GROUPS = ("head", "heads", "fc", "classifier", "last_linear", "pooler", "lm_head")
TRAINED_SHARE = 0.5         # a group is trained when this share of its matrices looks trained


@dataclass
class GroupJudgement:
    name: str
    verdict: str
    tensors: list = field(default_factory=list)     # list[TensorEvidence]
    structural_head: bool = False                   # holds the state dict's structural head

    @property
    def matrices(self) -> list:
        return [t for t in self.tensors if t.kind == KIND_MATRIX]

    @property
    def is_head(self) -> bool:
        return (self.structural_head or self.name in HEAD_GROUPS
                or self.name.split(".")[0] in HEAD_GROUPS)

    def words(self) -> str:
        return describe(self.verdict, self.tensors)

    def to_dict(self) -> dict:
        mats = self.matrices
        evidence = {"summary": self.words(), "matrices": len(mats),
                    "trained_matrices": sum(t.looks_trained for t in mats),
                    "constant_tensors": [t.name for t in self.tensors if t.kind == KIND_CONSTANT],
                    "tensors": [t.to_dict() for t in self.tensors]}
        return {"name": self.name, "verdict": self.verdict, "is_head": self.is_head,
                "evidence": evidence}


@dataclass
class FileJudgement:
    verdict: str
    summary: str
    groups: list = field(default_factory=list)      # list[GroupJudgement]
    unjudged: list = field(default_factory=list)    # names of tensors carrying no evidence
    silent: list = field(default_factory=list)      # GroupJudgements of no-evidence groups

    @property
    def backbone_trained_share(self) -> float:
        """Share (in %) of non-head groups judged trained: 100 for trained and finetune-init."""
        backbone = [g for g in self.groups if not g.is_head]
        if not backbone:
            return 0.0
        return 100.0 * sum(g.verdict == TRAINED for g in backbone) / len(backbone)


def group_name(key: str) -> str:
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0] if len(parts) > 1 else key


def group_verdict(name: str, tensors: list) -> Optional[GroupJudgement]:
    """None when the group carries no evidence (only non-constant vectors or tiny tensors)."""
    if any(t.kind == KIND_NON_FINITE for t in tensors):
        return GroupJudgement(name, NON_FINITE, tensors)
    if tensors and all(t.kind == KIND_CONSTANT and not t.looks_trained for t in tensors):
        return GroupJudgement(name, UNTRAINED_CONSTANT, tensors)
    ballots = [layer.trained for layer in voting_norms(tensors)]
    if not ballots:
        ballots = [t.looks_trained for t in tensors if t.judged]
    if ballots:
        verdict = TRAINED if sum(ballots) >= TRAINED_SHARE * len(ballots) else RANDOM_INIT
        return GroupJudgement(name, verdict, tensors)
    if any(t.kind == KIND_CONSTANT and t.norm is None for t in tensors):
        return GroupJudgement(name, RANDOM_INIT, tensors)
    return None


def norm_layers_of(tensors: Iterable[TensorEvidence]) -> list:
    """The BatchNorm layers (norms.NormLayer) of these tensors, once each, in order; layers
    whose tensors the --arch comparison judged are left to it."""
    layers: dict = {}
    compared = set()
    for t in tensors:
        if t.norm is not None:
            layers.setdefault(t.norm.layer, t.norm)
            if t.arch_trained is not None:
                compared.add(t.norm.layer)
    return [layer for name, layer in layers.items() if name not in compared]


def voting_norms(tensors: Iterable[TensorEvidence]) -> list:
    """The BatchNorm layers that say trained or at init (not those where only one of statistics
    and weight/bias left its init)."""
    return [layer for layer in norm_layers_of(tensors) if layer.trained is not None]


def judge(evidence: Iterable[TensorEvidence]) -> FileJudgement:
    evidence = list(evidence)
    grouped: dict[str, list] = {}
    for item in evidence:
        grouped.setdefault(group_name(item.name), []).append(item)
    groups, unjudged, silent = [], [], []
    for name, items in grouped.items():
        verdict = group_verdict(name, items)
        if verdict is None:
            unjudged += [t.name for t in items]
            silent.append(GroupJudgement(name, NO_EVIDENCE, items))
        else:
            groups.append(verdict)
    head = state_dict_head({t.name: t.shape for t in evidence})
    for group in groups + silent:
        group.structural_head = head is not None and group_name(f"{head}.weight") == group.name
    groups.sort(key=lambda g: natural(g.name))
    silent.sort(key=lambda g: natural(g.name))
    verdict, summary = _overall(groups, evidence)
    return FileJudgement(verdict, summary, groups, unjudged, silent)


def natural(name: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split(".")]


def _overall(groups: list, evidence: list) -> tuple[str, str]:
    bad = [t for t in evidence if t.kind == KIND_NON_FINITE]
    if bad:
        names = ", ".join(f"{t.name} ({t.non_finite} values)" for t in bad[:6])
        more = f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""
        return NON_FINITE, f"non-finite values in {len(bad)} tensor(s): {names}{more}"
    floats = [t for t in evidence if t.kind != KIND_SKIPPED]
    if evidence and not floats:
        notes = sorted({t.note or "not judged" for t in evidence})
        return UNREADABLE, (f"none of its {len(evidence)} tensor(s) holds weights the evidence "
                            f"can judge ({'; '.join(notes[:4])})")
    if floats and all(t.kind == KIND_CONSTANT and not t.looks_trained for t in floats):
        values = sorted({t.constant for t in evidence if t.kind == KIND_CONSTANT})
        return UNTRAINED_CONSTANT, (f"all {len(floats)} float tensors are exact constants "
                                    f"({', '.join(f'{v:g}' for v in values[:4])})")
    if not groups:
        small = [t for t in floats if t.low_power]
        why = (f"; {len(small)} small matrix(es) whose scale and shape fit no standard "
               f"initialiser ({', '.join(t.name for t in small[:4])})" if small else "")
        return NO_EVIDENCE, ("no tensor carries evidence either way: no weight matrix of at "
                             f"least 8 x 8 the tests can judge, no changed norm parameter{why}; "
                             "neither trained nor random can be said")
    at_init = [g for g in groups if g.verdict in AT_INIT]
    trained = [g for g in groups if g.verdict == TRAINED]
    if not at_init:
        return TRAINED, describe(TRAINED, evidence)
    if not trained:
        return RANDOM_INIT, describe(RANDOM_INIT, evidence)
    if all(g.is_head for g in at_init):
        heads = ", ".join(g.name for g in at_init)
        return FINETUNE_INIT, (f"backbone trained, head at init ({heads}); "
                               + describe(TRAINED, [t for g in trained for t in g.tensors]))
    names = ", ".join(g.name for g in at_init)
    return PARTIALLY_TRAINED, (f"{len(trained)}/{len(groups)} groups trained; at init: {names}")


def describe(verdict: str, tensors: Iterable[TensorEvidence]) -> str:
    """The strongest evidence in words, e.g. ``47/49 weight matrices indistinguishable from init
    (top singular value 0.99x MP edge, kurtosis 3.0)``."""
    tensors = list(tensors)
    bad = [t for t in tensors if t.kind == KIND_NON_FINITE]
    if verdict == NON_FINITE and bad:
        return "non-finite values in " + ", ".join(f"{t.name} ({t.non_finite})" for t in bad)
    if verdict == NO_EVIDENCE:
        return silence(tensors)
    mats = [t for t in tensors if t.kind == KIND_MATRIX and t.judged]
    silent = [t.name for t in tensors if t.kind == KIND_MATRIX and not t.judged]
    voting = voting_norms(tensors)
    consts = [t for t in tensors if t.kind == KIND_CONSTANT
              and not (t.norm is not None and t.norm in voting)]
    norm_words = _norm_words(verdict, tensors)
    arch_words = _arch_words(tensors) + (
        f"; no evidence from {len(silent)} small matrix(es) whose scale fits no standard "
        f"initialiser ({', '.join(silent[:4])})" if silent else "")
    const_words = (f"; {len(consts)} exact-constant tensor(s)" if consts else "") + arch_words
    if not mats:
        if voting:
            return norm_words + const_words
        return f"{len(consts)} exact-constant tensor(s), no weight matrix to judge{arch_words}"
    lead = f"{norm_words}; " if norm_words else ""
    learned = [t for t in mats if t.looks_trained]
    if (verdict == TRAINED and learned) or len(learned) == len(mats):
        return (f"{lead}{len(learned)}/{len(mats)} weight matrices show learned structure "
                f"({_spread(learned)}){const_words}")
    chosen = [t for t in mats if not t.looks_trained]     # BatchNorm layers may outvote them
    fits = sorted({t.init_fit for t in chosen if t.init_fit})
    fit_words = f"; scale fits {', '.join(fits)}" if fits else ""
    return (f"{lead}{len(chosen)}/{len(mats)} weight matrices indistinguishable from init "
            f"({_median(chosen)}{fit_words}){const_words}")


def _norm_words(verdict: str, tensors: list) -> str:
    """What the BatchNorm layers say, e.g. ``9/9 BatchNorm layers trained (statistics moved,
    weight/bias 0.036-0.133 rms from their init, 46 batches tracked)``."""
    layers = norm_layers_of(tensors)
    voting = [layer for layer in layers if layer.trained is not None]
    quiet = [layer for layer in layers if layer.trained is None]
    stats_only = sum(layer.stats_moved for layer in quiet)
    quiet_words = "; ".join(
        f"{n} BatchNorm layer(s) {words} (no vote)" for n, words in (
            (stats_only, "with moved statistics but weight/bias at init"),
            (len(quiet) - stats_only, "with weight/bias off their init but statistics at 0/1"))
        if n)
    if not voting:
        return quiet_words
    quiet_words = f"; {quiet_words}" if quiet_words else ""
    if verdict == TRAINED:
        chosen = [layer for layer in voting if layer.trained]
        changes = [layer.affine_change for layer in chosen]
        batches = sorted({layer.batches for layer in chosen if layer.batches is not None})
        batch_words = f", {_range(batches, 0)} batches tracked" if batches else ""
        return (f"{len(chosen)}/{len(voting)} BatchNorm layers trained (statistics moved, "
                f"weight/bias {_range(changes, 3)} rms from their init{batch_words})"
                f"{quiet_words}")
    chosen = [layer for layer in voting if not layer.trained]
    return (f"{len(chosen)}/{len(voting)} BatchNorm layers at init (running mean 0, var 1, "
            f"no batch tracked, weight/bias within {CONSTANT_TOLERANCE:g} of their init)"
            f"{quiet_words}")


def silence(tensors: list) -> str:
    """Why a group carries no evidence, e.g. ``no evidence: 1 one-element tensor(s) (a single
    value is no evidence)``."""
    counts: dict = {}
    for t in tensors:
        counts[_silence_reason(t)] = counts.get(_silence_reason(t), 0) + 1
    return "no evidence: " + "; ".join(f"{n} {reason}" for reason, n in counts.items())


def _silence_reason(t: TensorEvidence) -> str:
    if t.note == ONE_ELEMENT:
        return "one-element tensor(s) (a single value is no evidence)"
    if t.kind == KIND_MASK:
        return "pruning mask(s) (not weights)"
    if t.norm is not None:
        return ("tensor(s) of BatchNorm layers whose statistics and weight/bias disagree "
                "(only one of them left its init)")
    if t.kind == KIND_MATRIX:
        return "small matrix(es) whose scale fits no standard initialiser"
    if t.kind == KIND_SKIPPED:
        return "tensor(s) not judged (" + (t.note or "not judged") + ")"
    return "vector(s) or small tensor(s) without an init signature"


def _arch_words(tensors: list) -> str:
    compared = [t for t in tensors if t.arch_trained is not None]
    if not compared:
        return ""
    equal = [t.reference["equals_fresh_init_seed"] for t in compared
             if "equals_fresh_init_seed" in (t.reference or {})]
    at_init = sum(not t.arch_trained for t in compared)
    words = f"; vs fresh inits of the architecture: {at_init}/{len(compared)} tensors at init"
    if equal:
        seeds = ", ".join(str(s) for s in sorted(set(equal)))
        words += f" ({len(equal)} identical to the fresh init with seed {seeds})"
    return words


def _spread(mats: list) -> str:
    if not mats:
        return "none"
    ratios = [t.sv_ratio for t in mats]
    kurts = [t.kurtosis for t in mats]
    lows = [t.sv_min_ratio for t in mats if t.sv_min_limit is not None
            and t.sv_min_ratio < t.sv_min_limit]
    low_words = (f", smallest singular value {min(lows):.2f}x lower MP edge in {len(lows)}"
                 if lows else "")
    return (f"top singular value {_range(ratios, 2)}x MP edge, "
            f"kurtosis {_range(kurts, 1)}{low_words}")


def _range(values: list, digits: int) -> str:
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}-{high}"


def _median(mats: list) -> str:
    if not mats:
        return "none"
    return (f"top singular value {statistics.median(t.sv_ratio for t in mats):.2f}x MP edge, "
            f"kurtosis {statistics.median(t.kurtosis for t in mats):.1f}")
