"""Every file of tests/data/real (what other people's tools wrote: MLPerf result logs, pruning
repositories' logs, a timm output folder, weights that pip packages ship) against the truth read by
hand in truth.json."""
import json
import math
from pathlib import Path

import pytest

from harness.forensics.inspection import inspect_checkpoint
from harness.logs import LogError, parse_log
from harness.logs.declared import LogPatterns
from harness.start import epoch_zero

REAL = Path(__file__).parent / "data" / "real"
TRUTH = json.loads((REAL / "truth.json").read_text())
LOGS = sorted(k for k, v in TRUTH.items() if v["kind"] == "log")
WEIGHTS = sorted(k for k, v in TRUTH.items() if v["kind"] == "weights")


def test_the_corpus_is_what_the_readme_promises():
    files = {p.name for p in REAL.iterdir()} - {"truth.json", "README.md"}
    assert files == set(TRUTH), "every committed file has a truth entry and every entry a file"
    assert len(TRUTH) >= 20
    assert len({v["source"] for v in TRUTH.values()}) >= 6
    stored = list(REAL.rglob("*"))       # a timm output folder holds its summary.csv and args.yaml
    assert not any(p.is_symlink() for p in stored)
    assert all(p.stat().st_size < 3 * 1024 * 1024 for p in stored if p.is_file())
    readme = (REAL / "README.md").read_text()
    assert all(name in readme for name in TRUTH)


def _record(name: str):
    """The record of a corpus log, read as a user would: detected, or with the declared format its
    truth entry names (a log whose phases only a declared state pattern tells apart)."""
    truth = TRUTH[name]
    patterns = LogPatterns.from_lines(truth["patterns"]) if "patterns" in truth else None
    return parse_log(REAL / name, patterns=patterns)


def _check_state(state, truth: dict) -> None:
    assert state.best_accuracy == pytest.approx(truth["best_accuracy"], abs=5e-3)
    if "final_accuracy" in truth:
        assert state.final_accuracy == pytest.approx(truth["final_accuracy"], abs=5e-3)
    if "metric" in state.extra:           # MLPerf logs name their metric
        assert state.extra["metric"].startswith(truth["metric"])
    trained = truth["epochs_trained_at_evaluation"]
    if trained is None:     # epoch_num counts samples or stays fixed: no epochs are claimed
        assert state.extra["epochs_unknown"] and epoch_zero(state) is None
        return
    if "epochs_trained_at_evaluation" in state.extra:
        assert state.extra["epochs_trained_at_evaluation"][-len(trained):] == trained
    assert [e.epoch for e in state.epochs] == [t - 1 for t in trained]
    assert (epoch_zero(state) is not None) is truth["evaluation_after_first_epoch"]


@pytest.mark.parametrize("name", LOGS)
def test_real_log(name):
    truth = TRUTH[name]
    if truth.get("refused"):
        with pytest.raises(LogError, match="cannot tell its format"):
            parse_log(REAL / name)
        return
    record = _record(name)
    assert record.source == f"log:{truth.get('format', 'mllog')}"
    for fact in ("dataset", "model", "num_classes"):     # where the truth read them by hand
        if fact in truth:
            assert getattr(record, fact) == truth[fact], fact
    states = truth.get("states", [truth])
    assert len(record.states) == len(states)
    for state, state_truth in zip(record.states, states):
        _check_state(state, state_truth)
    # a format with no end-of-run line the harness reads does not claim the run complete
    assert record.complete is (truth["complete"] and truth.get("completeness_read", True))
    state = record.state(0)
    counted = [e.test_correct is not None for e in state.epochs]
    assert all(counted) if truth["correct_counts"] else not any(counted)
    if truth["correct_counts"]:
        best = state.best_epoch
        assert best.test_n == 50000 and best.test_correct == round(best.test_accuracy * 500)


@pytest.mark.parametrize("name", WEIGHTS)
def test_real_weights(name):
    inspection = inspect_checkpoint(REAL / name)
    assert inspection.verdict == TRUTH[name]["truth"], inspection.summary
    assert inspection.problem is None or TRUTH[name]["truth"] != "trained"


def test_a_pretrained_claim_does_not_pass_no_evidence():
    inspection = inspect_checkpoint(REAL / "lpips01_alex.pth", claim="the --init of a run")
    assert inspection.verdict == "no-evidence"
    assert inspection.problem.startswith("claims pretrained (the --init of a run) but is no-evidence")


def test_best_values_are_finite_numbers():
    for name in LOGS:
        if not TRUTH[name].get("refused"):
            best = _record(name).state(0).best_accuracy
            assert math.isfinite(best)


def test_the_corpus_table_lists_every_entry_and_all_agree(tmp_path, capsys):
    from bench.real_corpus import main
    assert main(["--out", str(tmp_path / "corpus.json")]) == 0
    rows = json.loads((tmp_path / "corpus.json").read_text())["rows"]
    assert [r["file"] for r in rows] == list(TRUTH) and all(r["agree"] for r in rows)
    out = capsys.readouterr().out
    assert f"{len(TRUTH)} of {len(TRUTH)} entries agree" in out
    facts = "best 75.058, first eval after 4 epochs; complete yes"
    source = "mlcommons/training_results_v0.5 @ c71f2e7"
    assert f"| mlperf05_google_resnet_tpu.txt | {source} | {facts} | {facts} | yes |" in out


@pytest.mark.parametrize("name, wrong", [("mlperf05_google_resnet_tpu.txt", {"best_accuracy": 76.058}),
                                         ("timm_adan_deit_small_150", {"evaluation_after_first_epoch": False}),
                                         ("lpips01_alex.pth", {"truth": "random-init"}),
                                         ("torch_pruning_l1_resnet56.txt", {"dataset": "cifar100"})])
def test_the_corpus_table_says_no_where_the_truth_differs(name, wrong):
    from bench.real_corpus import row
    assert row(name, TRUTH[name])["agree"] and not row(name, {**TRUTH[name], **wrong})["agree"]
