"""What a pruning run claims, from its own arguments: the sparsity of each state, where each
state starts (rewind), whether masks nest, whether a penalty acts, and which log line states
the sparsity of a state.

Three sources, each read as data (:data:`RESEARCH_METHODS` for the research group's script):

- the research group's arguments (the log's ``Namespace``): ``struct`` (refill, rsst),
  ``rate``, ``mlp_prune_ratio``, ``vit_structured``, ``vit_prune_target``, ``sorting_mode``,
  ``prune_type`` (``lt``: every state restarts from the init file; ``rewind_lt``: from epoch
  ``rewind_epoch`` of state 0);
- a harness run's spec (``PruneSpec``: method, the recorded target of each state, ``rewind``,
  ``schedule``);
- a declared layout's claim (:mod:`harness.runfolder.declaration`), each field declared or read
  from a log line, and recorded with where it came from (``RunClaims.sources``): an unstructured
  magnitude run pruning ``rate`` of its remaining weights each state (``torch.nn.utils.prune``
  applying an amount again), globally or layer by layer.

In the research script (main_imp_fillback.py) a structured Refill state removes ``rate`` of all
heads and ``mlp_prune_ratio`` of all MLP neurons anew each state (not compounding, re-selected:
not nested); RSST trains unpruned and, at the end of state k, cuts with the unstructured
magnitude mask of its pruning step, ``1 - (1 - rate)^k`` of the prunable weights (nested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from harness.runfolder.layout import RunFolderError

SPARSITY_TOLERANCE = 0.1     # pp: exact zeros against a schedule the run computes exactly


@dataclass(frozen=True)
class Pools:
    """Weights and channels of the prunable layers (from the stored tensors' layout)."""

    total: int
    attention: int = 0          # weights in attention heads
    heads: int = 0
    mlp: int = 0                # weights in MLP neurons
    neurons: int = 0
    layers: int = 1             # units selected apart (attention layers; tensors, layer-wise)


@dataclass(frozen=True)
class Target:
    sparsity: float             # percent
    tolerance: float            # percentage points
    basis: str                  # the claim, in words


@dataclass(frozen=True)
class MethodClaim:
    """How a research ``struct`` behaves: per-state structured rate or compounding rate, nested
    masks, a penalty, and which log line states a state's sparsity (``state_start``: the report
    at the state's header; ``pruning_step``: the first report after the previous state's
    summary, the mask the state is cut with at its end)."""

    per_state_structured: bool
    nested: bool
    penalised: bool
    log_rule: str


RESEARCH_METHODS = {
    "refill": MethodClaim(per_state_structured=True, nested=False, penalised=False,
                          log_rule="state_start"),
    "rsst": MethodClaim(per_state_structured=False, nested=True, penalised=True,
                        log_rule="pruning_step"),
}
REWINDS = {"lt": lambda args: "init", "rewind_lt": lambda args: f"epoch:{args.get('rewind_epoch')}"}


@dataclass(frozen=True)
class RunClaims:
    method: str
    source: str                         # "arguments" or "spec"
    structured: bool
    nested: bool
    penalised: bool
    log_rule: str                       # state_start, pruning_step, record
    rewind: Optional[str]               # init, epoch:K, none; None: not claimed
    rate: float = 0.0
    mlp_rate: float = 0.0
    per_state: bool = False
    global_sort: bool = True
    recorded: dict = field(default_factory=dict)   # state -> target % (harness spec)
    scope: Optional[str] = None         # global, layer-wise (declared); None: the script's own
    states: Optional[int] = None        # pruned states claimed (declared)
    final_sparsity: Optional[float] = None   # fraction at the last state (declared)
    sources: dict = field(default_factory=dict)    # claim field -> where it was read (declared)

    def target(self, state: int, pools: Optional[Pools]) -> Target:
        if state == 0:
            return Target(0.0, SPARSITY_TOLERANCE, "State 0 is dense")
        if self.recorded:
            if state not in self.recorded:
                raise RunFolderError(f"the run records no target sparsity for state {state}")
            return Target(self.recorded[state], SPARSITY_TOLERANCE, "the spec's schedule")
        if self.per_state and pools is not None and pools.heads + pools.neurons:
            return self._per_state(pools)
        value = 100.0 * (1.0 - (1.0 - self.rate) ** state)
        if self.scope is None:
            return Target(value, SPARSITY_TOLERANCE, f"1 - (1 - rate {self.rate:g})^{state}")
        return self._declared(state, value, pools)

    def _declared(self, state: int, value: float, pools: Optional[Pools]) -> Target:
        """A declared magnitude schedule: each state rounds its count of weights to remove once
        (globally) or once per tensor (layer-wise), at most half a weight each."""
        units = 1 if self.scope == "global" else (pools.layers if pools else 0)
        rounding = 100.0 * 0.5 * state * units / pools.total if pools and pools.total else 0.0
        if self.final_sparsity is not None:
            basis = (f"final sparsity {100 * self.final_sparsity:.4g}% at state {self.states}: "
                     f"{self.rate:.4g} of the remaining weights each state, {self.scope}")
        else:
            basis = f"1 - (1 - rate {self.rate:g})^{state}, {self.scope}"
        return Target(value, SPARSITY_TOLERANCE + math.ceil(rounding * 1000) / 1000, basis)

    def target_without_layout(self, state: int, heads: int) -> "Target | str":
        """A per-state structured claim when the weights' layout is unknown (a log alone): with
        one rate for both pools the target is that rate, within one head of the pool."""
        if state == 0:
            return Target(0.0, SPARSITY_TOLERANCE, "State 0 is dense")
        if self.rate != self.mlp_rate or not heads:
            return ("the claimed sparsity depends on the sizes of the head and neuron pools, "
                    "which a log alone does not give: judge the run's folder")
        return Target(100.0 * self.rate, SPARSITY_TOLERANCE + 100.0 / heads,
                      f"{self.rate:g} of the heads and of the MLP neurons each state, within one "
                      f"head of the {heads}")

    def _per_state(self, pools: Pools) -> Target:
        value = 100.0 * (pools.attention * self.rate + pools.mlp * self.mlp_rate) / pools.total
        rounding = (pools.attention / max(1, pools.heads) + pools.mlp / max(1, pools.neurons))
        rounding *= 1 if self.global_sort else pools.layers
        tolerance = SPARSITY_TOLERANCE + 100.0 * rounding / pools.total
        return Target(value, tolerance,
                      f"{self.rate:g} of the heads and {self.mlp_rate:g} of the MLP neurons each "
                      f"state, within one channel per pool")


def _number(args: dict, key: str, default: Optional[float] = None) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise RunFolderError(f"the run's arguments give {key}={value!r}; a pruning rate in [0, 1) "
                             f"is needed to know what each state claims")
    return float(value)


def research_claims(args: dict) -> RunClaims:
    """The claims of the research script's arguments (a log's ``Namespace``)."""
    method = args.get("struct")
    if method not in RESEARCH_METHODS:
        raise RunFolderError(f"the run's arguments give struct={method!r}; known: "
                             f"{', '.join(RESEARCH_METHODS)}")
    kind = RESEARCH_METHODS[method]
    rate = _number(args, "rate")
    target = args.get("vit_prune_target", "head")
    mlp = args.get("mlp_prune_ratio")
    mlp_rate = 0.0 if target == "head" else _number({"m": rate if mlp is None else mlp}, "m")
    structured = bool(args.get("vit_structured"))
    rewind = REWINDS.get(args.get("prune_type"), lambda a: None)(args)
    return RunClaims(method=method, source="arguments", structured=structured,
                     nested=kind.nested or not structured, penalised=kind.penalised,
                     log_rule=kind.log_rule, rewind=rewind, rate=rate, mlp_rate=mlp_rate,
                     per_state=kind.per_state_structured and structured,
                     global_sort=args.get("sorting_mode", "layer-wise") == "global")


def spec_claims(record) -> RunClaims:
    """The claims of a harness run (its spec and the targets it recorded)."""
    from harness.prune.methods import METHODS

    prune = (record.spec or {}).get("prune") or {}
    method = prune.get("method")
    if method not in METHODS:
        raise RunFolderError(f"run {record.run_id} is no pruning run of the harness (its spec has "
                             f"prune method {method!r})")
    reselects = prune.get("schedule") == "per_state_rate"
    recorded = {s.index: float(s.target_sparsity) for s in record.states
                if s.target_sparsity is not None}
    return RunClaims(method=method, source="spec", structured=METHODS[method].structured,
                     nested=not reselects, penalised=method == "rsst", log_rule="record",
                     rewind=prune.get("rewind", "init"), recorded=recorded)


DECLARED_DEFAULTS = {"scope": "global", "nested": True}


def declared_claims(values: dict, sources: dict, source: str) -> RunClaims:
    """The claims of a declared layout: ``values`` (claim field -> typed value, as
    :func:`harness.runfolder.declaration.claim_value` reads it), ``sources`` (field -> where it
    was read), ``source`` (the declaration's name, for the message)."""
    lacking = [k for k in ("method",) if k not in values]
    if "rate" not in values and "final_sparsity" not in values:
        lacking.append("rate or final_sparsity")
    if "final_sparsity" in values and "states" not in values:
        lacking.append("states (with final_sparsity)")
    if lacking:
        raise RunFolderError(f"{source}: the run's claim lacks {', '.join(lacking)}; declare them "
                             f"(e.g. method: imp, rate: 0.2) or a claim: REGEX for the log line "
                             f"that states them")
    if "rate" in values and "final_sparsity" in values:
        raise RunFolderError(f"{source}: both rate ({sources['rate']}) and final_sparsity "
                             f"({sources['final_sparsity']}) are claimed; keep one")
    values = {**DECLARED_DEFAULTS, **values}
    sources = {**{k: "default" for k in DECLARED_DEFAULTS if k not in sources}, **sources}
    final = values.get("final_sparsity")
    rate = values["rate"] if final is None else 1.0 - (1.0 - final) ** (1.0 / values["states"])
    where = sorted(set(sources.values()) - {"default"})
    return RunClaims(method=values["method"], source=" and ".join(where), structured=False,
                     nested=values["nested"], penalised=False, log_rule="state_start",
                     rewind=values.get("rewind"), rate=rate, scope=values["scope"],
                     states=values.get("states"), final_sparsity=final, sources=sources)
