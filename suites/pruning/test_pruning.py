"""Pruning suite: per state of each method (Refill, RSST), what the stored files hold against
what the run claims; and at the last state, Refill no worse than RSST by more than 1 pp.

The harness's own runs (``pytest suites/pruning``): the stored model's accuracy, the sparsity
against the schedule, masks that only grow, whole heads/neurons removed, read from each state's
checkpoint and masks (harness.prune.measurement) against the profile's bars.

Every run, including one judged from its artifacts (``--harness-from-run DIR``: the research
group's save folder or a run of the harness's store; ``--harness-from-log LOG``: a research
pruning log alone, judged on the sparsity each state reports), also gets the checks of
:mod:`harness.runfolder`, each against the bar the run's own arguments set:
``pruning/<method>/state<k>/<check>`` for ``trained``, ``rewind``, ``penalty``,
``log_consistency``, ``reported_accuracy`` (and, from a folder, ``sparsity``, ``nesting``,
``structure``). A check the files cannot answer is skipped with the reason (what to pass).
"""
from dataclasses import replace

import pytest

from harness.escape import terminal
from harness.prune.measurement import measure_run, stored_accuracy
from harness.prune.methods import METHODS
from harness.runfolder import Finding, RunFolderError, judgement_of
from ..profiles import PRUNING_BARS, PRUNING_CASES

SUITE = "pruning"
HARNESS_CASES = PRUNING_CASES
HARNESS_BARS = PRUNING_BARS


def _where(record, state) -> dict:
    return {"run_id": record.run_id, "seed": record.spec.get("seed"), "model": record.model,
            "checkpoint": state.checkpoint, "reused_stored_run": bool(record.notes.get("reused"))}


def _from_files(record) -> bool:
    """A run judged from its artifacts (--harness-from-run, or a log with --harness-from-log):
    its bars are its own claims."""
    return record.source != "engine"


def _judge(harness, session, case, check: str) -> None:
    """Record every state's verdict of ``check``; skip, saying why, when no state could be
    judged; a file that cannot be read fails the test with its one line."""
    record = harness.run(case)
    try:
        run = judgement_of(record, device=str(session.device), data_root=session.options.data_root)
        outcomes = run.outcomes(check)
    except RunFolderError as exc:
        pytest.fail(terminal(f"{case.id}: {exc}"), pytrace=False)
    findings = [o for o in outcomes if isinstance(o, Finding)]
    unjudged = [f"state {o.state}: {o.reason}" for o in outcomes if not isinstance(o, Finding)]
    for finding in findings:        # the states not judged are named beside each verdict
        verdict = finding.verdict()
        if unjudged:
            verdict = replace(verdict, evidence={**verdict.evidence,
                                                 "states_not_judged": [terminal(u) for u in unjudged]})
        harness.record(verdict)
    if not findings:
        reasons = sorted({o.reason for o in outcomes}) or [f"no state of {case.id} has a {check} check"]
        pytest.skip(terminal(f"{check} of {case.id}: {'; '.join(reasons)}"))


def test_accuracy(harness, case):
    record = harness.run(case)
    if record.source not in ("engine", "run:store"):
        pytest.skip(f"{record.source}: the profile's accuracy floors are the harness's own runs'; "
                    f"this run's stored states are compared with what it reported by "
                    f"test_reported_accuracy")
    for state in record.states:
        correct, n = stored_accuracy(state)
        best = state.best_epoch
        harness.check_accuracy(
            f"pruning/{case.name}/state{state.index}/accuracy", correct, n,
            {"metric": "test accuracy of the model as stored at the end of the state (after RSST's cut)",
             "best_epoch_accuracy": round(best.test_accuracy, 4), "best_epoch": best.epoch,
             "epochs": len(state.epochs), "sparsity": round(state.sparsity, 4), **_where(record, state)})


def test_sparsity(harness, harness_session, case):
    record = harness.run(case)
    if _from_files(record):
        return _judge(harness, harness_session, case, "sparsity")
    for state, stored in zip(record.states, measure_run(record)):
        harness.check(
            f"pruning/{case.name}/state{state.index}/sparsity", stored.sparsity,
            {"metric": "exact zeros among the prunable weights of the stored checkpoint",
             "zeros": stored.zeros, "prunable_weights": stored.total,
             "engine_reported": round(state.sparsity, 4), **_where(record, state)})


def test_nesting(harness, harness_session, case):
    record = harness.run(case)
    if _from_files(record):
        return _judge(harness, harness_session, case, "nesting")
    if not case.spec.prune.nested:
        pytest.skip(f"{case.id} re-selects its channels every state (schedule "
                    f"{case.spec.prune.schedule!r}): its masks are not claimed nested")
    for state, stored in list(zip(record.states, measure_run(record)))[1:]:
        harness.check(
            f"pruning/{case.name}/state{state.index}/nesting", stored.revived,
            {"metric": f"weights masked at state {state.index - 1} whose mask or stored value is "
                       f"non-zero at state {state.index}", **_where(record, state)})


def test_structure(harness, harness_session, case):
    record = harness.run(case)
    if _from_files(record):
        return _judge(harness, harness_session, case, "structure")
    if not METHODS[case.spec.prune.method].structured:
        return
    for state, stored in list(zip(record.states, measure_run(record)))[1:]:
        harness.check(
            f"pruning/{case.name}/state{state.index}/structure", stored.bad_channels,
            {"metric": "channels (heads, MLP neurons) partly pruned, plus removed channels with a "
                       "non-zero weight, in the stored checkpoint",
             "heads_left": stored.left("head"), "neurons_left": stored.left("neuron"),
             "channels_removed": sum(f["removed"] for f in stored.structure.values()),
             **_where(record, state)})


def test_trained(harness, harness_session, case):
    """The stored prunable weights moved from the init file (not the checkpoint's own copy)."""
    _judge(harness, harness_session, case, "trained")


def test_rewind(harness, harness_session, case):
    """Each state starts where the run claims: the saved init equals the init file; pruned
    entries of ``weight_orig`` remember the start, not the previous state."""
    _judge(harness, harness_session, case, "rewind")


def test_log_consistency(harness, harness_session, case):
    """What the log (or the run's record) says each state holds, against the stored files."""
    _judge(harness, harness_session, case, "log_consistency")


def test_penalty(harness, harness_session, case):
    """RSST: the channels its penalty targets were driven down before the cut."""
    if case.spec.prune.method != "rsst":
        pytest.skip(f"{case.id} trains under no penalty")
    _judge(harness, harness_session, case, "penalty")


def test_reported_accuracy(harness, harness_session, case):
    """The stored state, evaluated, scores what the run reported (within the Wilson interval)."""
    _judge(harness, harness_session, case, "reported_accuracy")


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
