"""--harness-from-run end to end: the pruning suite judges run folders in the research group's
format, trained for real on CPU by fixtures/rsst_run.py (their state loop, save-before-cut order
and init aliasing), and the harness's own store runs, by the same checks; --harness-from-log
judges a pruning log alone."""
import json
import shutil
from pathlib import Path

import pytest

import fixtures.rsst_model  # noqa: F401  (imported once here, not inside an in-process run)
from fixtures.rsst_run import built_runs

ROOT = Path(__file__).resolve().parent.parent
MODEL, DATA = "fixtures.rsst_model:vit_mini", "fixtures.rsst_model:digits32"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The group-format Refill and RSST folders, built once per session (about a minute)."""
    return built_runs(tmp_path_factory.getbasetemp() / "rsst_runs")


def _suite(pytester: pytest.Pytester, *args: str) -> tuple[int, str, dict]:
    reports = pytester.path / "reports"
    result = pytester.runpytest(str(ROOT / "suites" / "pruning"), "--harness-reports-dir",
                                str(reports), "-q", "-p", "no:randomly", "-rs", *args)
    path = reports / "latest" / "report.json"
    output = "\n".join(result.outlines + result.errlines)
    return int(result.ret), output, json.loads(path.read_text()) if path.is_file() else {}


def _by_id(report: dict) -> dict:
    return {v["id"]: v for v in report.get("verdicts", [])}


def _line(verdict: dict) -> str:
    return verdict["evidence"].get("note", "")


def test_rsst_states_fail_sparsity_log_consistency_and_penalty(pytester, runs):
    ret, output, report = _suite(pytester, "--harness-from-run", str(runs["rsst"]))
    assert ret == 1, output
    v = _by_id(report)
    for k, claimed, remaining in ((1, 70.0, "30.00"), (2, 91.0, "9.00"), (3, 97.3, "2.70")):
        sparsity = v[f"pruning/rsst/state{k}/sparsity"]
        assert not sparsity["passed"] and sparsity["observed"] == 0.0
        assert sparsity["threshold"] == pytest.approx(claimed)
        # the failure names the file, its keys and the tensors that show it
        assert f"{k}checkpoint.pth.tar (plain weights (no weight_mask))" in _line(sparsity)
        assert "blocks.0.attn.qkv.weight 0.00%" in _line(sparsity)
        logged = v[f"pruning/rsst/state{k}/log_consistency"]
        assert not logged["passed"] and logged["threshold"] == pytest.approx(claimed)
        assert f"Remaining weights: {remaining}%" in _line(logged) and "log line" in _line(logged)
        penalty = v[f"pruning/rsst/state{k}/penalty"]
        assert not penalty["passed"] and penalty["observed"] > 0.8, penalty
        assert "no penalty drove them down" in _line(penalty)
    for check in ("trained", "rewind", "nesting"):   # what RSST does keep: its init, trained weights
        assert all(v[f"pruning/rsst/state{k}/{check}"]["passed"] for k in (1, 2, 3)), check
    assert v["pruning/rsst/state0/sparsity"]["passed"]
    assert "rsst State 1 sparsity of the stored weights" in output     # the one-line messages


def test_refill_states_pass_trained_structure_sparsity_and_fail_rewind(pytester, runs):
    ret, output, report = _suite(pytester, "--harness-from-run", str(runs["refill"]))
    assert ret == 1, output
    v = _by_id(report)
    for k in (1, 2, 3):
        for check in ("trained", "structure", "sparsity", "log_consistency"):
            assert v[f"pruning/refill/state{k}/{check}"]["passed"], (check, k)
        assert v[f"pruning/refill/state{k}/sparsity"]["observed"] == pytest.approx(70.3125)
        rewind = v[f"pruning/refill/state{k}/rewind"]
        assert not rewind["passed"] and rewind["observed"] == 16, rewind
        assert rewind["evidence"]["init_weight_differs"][:2] == ["blocks.0.attn.qkv.weight",
                                                                 "blocks.0.attn.proj.weight"]
        assert f"init_weight in {k}checkpoint.pth.tar differs from" in _line(rewind)
        assert "vit_mini_digits_init.pth.tar in 16 prunable tensors" in _line(rewind)
    # from state 2 on, the pruned entries of weight_orig show the start was state k-1's weights
    assert v["pruning/refill/state1/rewind"]["evidence"]["started_from_previous_state"] == []
    assert v["pruning/refill/state2/rewind"]["evidence"]["started_from_previous_state"]
    assert "pruning/refill/state1/nesting" not in v    # re-selected masks: reported, not failed
    assert v["pruning/refill/state2/sparsity"]["evidence"]["revived_weights"] > 0
    assert "nesting of pruning/refill: the run re-selects its masks" in output


def test_reported_accuracy_is_the_stored_models_and_a_false_report_fails(pytester, runs, tmp_path):
    ret, output, report = _suite(pytester, "--harness-from-run", str(runs["refill"]),
                                 "--harness-from-run-model", MODEL, "--harness-dataset", DATA)
    v = _by_id(report)
    for k in range(4):
        reported = v[f"pruning/refill/state{k}/reported_accuracy"]
        assert reported["passed"] and reported["evidence"]["n"] == 360, reported
        assert reported["evidence"]["reported_from"].startswith("log line ")
    copy = tmp_path / "refill"
    shutil.copytree(runs["refill"], copy)
    (tmp_path / "init_model").symlink_to(runs["refill"].parent / "init_model")
    log = copy / "digits_refill_70p.log"
    lines = log.read_text(encoding="utf-8").splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("* best SA=")][2]
    lines[at] = "* best SA=99.0"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ret, output, report = _suite(pytester, "--harness-from-run", str(copy),
                                 "--harness-from-run-model", MODEL, "--harness-dataset", DATA)
    false = _by_id(report)["pruning/refill/state2/reported_accuracy"]
    assert ret == 1 and not false["passed"]
    stored = v["pruning/refill/state2/reported_accuracy"]["observed"]
    assert f"2model_SA_best.pth.tar evaluated: {stored:.2f}%" in _line(false)
    assert f"vs reported 99.00% (log line {at + 1}: * best SA=99.0)" in _line(false)


def test_without_data_the_accuracy_check_says_what_to_pass(pytester, runs):
    ret, output, report = _suite(pytester, "--harness-from-run", str(runs["refill"]))
    assert "reported_accuracy of pruning/refill: evaluating the stored state needs " \
           "--harness-dataset NAME" in output
    assert not any(i.endswith("reported_accuracy") for i in _by_id(report))


def test_a_pruning_log_alone_shows_rsst_trains_dense(pytester, runs):
    """--harness-from-log with the pruning suite: each state's sparsity as the log reports it
    at the state's start (the model its epochs and best SA report on)."""
    ret, output, report = _suite(pytester, "--harness-from-log",
                                 str(runs["rsst"] / "digits_rsst_70p.log"))
    v = _by_id(report)
    assert ret == 1 and set(v) == {f"pruning/rsst/state{k}/sparsity" for k in range(4)}
    assert [v[f"pruning/rsst/state{k}/sparsity"]["passed"] for k in range(4)] == [True, False, False, False]
    assert "Remaining weights: 100.00% at the start of state 1" in _line(v["pruning/rsst/state1/sparsity"])
    ret, output, report = _suite(pytester, "--harness-from-log",
                                 str(runs["refill"] / "digits_refill_70p.log"))
    assert ret == 0 and all(x["passed"] for x in _by_id(report).values()), output


def test_the_harness_own_smoke_runs_pass_every_check_judged_the_same_way(pytester):
    ret, output, _ = _suite(pytester)                # train the smoke pruning runs
    assert ret == 0, output
    store = pytester.path / "reports" / "runs"
    pruning = [p for p in store.iterdir() if p.is_dir()
               and (json.loads((p / "record.json").read_text())["spec"].get("prune"))]
    assert len(pruning) == 2
    for folder in pruning:
        ret, output, report = _suite(pytester, "--harness-from-run", str(folder))
        v = _by_id(report)
        assert ret == 0, output
        method = json.loads((folder / "record.json").read_text())["spec"]["prune"]["method"]
        checks = {i.split("/")[-1] for i in v}
        assert {"sparsity", "log_consistency", "structure", "trained", "nesting",
                "reported_accuracy", "accuracy"} <= checks
        assert ("penalty" in checks) == (method == "rsst")
        assert "rewind of pruning/" in output and "claims no rewind" in output
