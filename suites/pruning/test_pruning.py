"""Pruning suite: per state of each method (Refill, RSST), the stored model's accuracy, the
achieved sparsity against the schedule, masks that only grow, whole heads/neurons removed; and at
the last state, Refill no worse than RSST by more than 1 pp.

Sparsity, nesting and structure are read from each state's stored checkpoint and masks
(harness.prune.audit), not from the engine's own numbers."""
import pytest

from harness.prune.audit import audit_run, stored_accuracy
from harness.prune.methods import METHODS
from suites.profiles import PRUNING_BARS, PRUNING_CASES

SUITE = "pruning"
HARNESS_CASES = PRUNING_CASES
HARNESS_BARS = PRUNING_BARS


def _where(record, state) -> dict:
    return {"run_id": record.run_id, "seed": record.spec.get("seed"), "model": record.model,
            "checkpoint": state.checkpoint, "reused_stored_run": bool(record.notes.get("reused"))}


def test_accuracy(harness, case):
    record = harness.run(case)
    for state in record.states:
        correct, n = stored_accuracy(state)
        best = state.best_epoch
        harness.check_accuracy(
            f"pruning/{case.name}/state{state.index}/accuracy", correct, n,
            {"metric": "test accuracy of the model as stored at the end of the state (after RSST's cut)",
             "best_epoch_accuracy": round(best.test_accuracy, 4), "best_epoch": best.epoch,
             "epochs": len(state.epochs), "sparsity": round(state.sparsity, 4), **_where(record, state)})


def test_sparsity(harness, case):
    record = harness.run(case)
    for state, audit in zip(record.states, audit_run(record)):
        harness.check(
            f"pruning/{case.name}/state{state.index}/sparsity", audit.sparsity,
            {"metric": "exact zeros among the prunable weights of the stored checkpoint",
             "zeros": audit.zeros, "prunable_weights": audit.total,
             "engine_reported": round(state.sparsity, 4), **_where(record, state)})


def test_nesting(harness, case):
    record = harness.run(case)
    for state, audit in list(zip(record.states, audit_run(record)))[1:]:
        harness.check(
            f"pruning/{case.name}/state{state.index}/nesting", audit.revived,
            {"metric": f"weights masked at state {state.index - 1} whose mask or stored value is "
                       f"non-zero at state {state.index}", **_where(record, state)})


def test_structure(harness, case):
    record = harness.run(case)
    if not METHODS[case.spec.prune.method].structured:
        return
    for state, audit in list(zip(record.states, audit_run(record)))[1:]:
        harness.check(
            f"pruning/{case.name}/state{state.index}/structure", audit.bad_channels,
            {"metric": "channels (heads, MLP neurons) partly pruned, plus removed channels with a "
                       "non-zero weight, in the stored checkpoint",
             "heads_left": audit.left("head"), "neurons_left": audit.left("neuron"),
             "channels_removed": sum(f["removed"] for f in audit.structure.values()),
             **_where(record, state)})


def test_refill_vs_rsst(harness):
    cases = {c.name: c for c in harness.cases()}
    if not {"refill", "rsst"} <= set(cases):
        pytest.skip(f"profile {harness.profile.name} has no refill and rsst pruning cases to compare"
                    f" (it has {sorted(cases) or 'none'})")
    refill, rsst = harness.run(cases["refill"]), harness.run(cases["rsst"])
    last = refill.states[-1].index
    (rc, rn), (sc, sn) = stored_accuracy(refill.states[-1]), stored_accuracy(rsst.state(last))
    harness.check(
        f"pruning/refill_vs_rsst/state{last}/accuracy", 100.0 * rc / rn - 100.0 * sc / sn,
        {"metric": "stored-model test accuracy of Refill minus RSST at the last state, in pp",
         "refill": round(100.0 * rc / rn, 4), "rsst": round(100.0 * sc / sn, 4), "n": rn,
         "refill_run": refill.run_id, "rsst_run": rsst.run_id})
