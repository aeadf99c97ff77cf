"""(b) The harness runs this project's own training script as a command, reads the log it
prints (the research group's format) and judges it; the script's checkpoints are listed with
their digests. An unchanged script, arguments and named files reuse the stored run (files the
script only writes, like its init under runs/, are outputs, not inputs)."""
import sys

from harness.suite import Bar, Case, CommandSpec

SUITE = "script"
HARNESS_CASES = [
    Case("digits", CommandSpec(argv=(sys.executable, "train.py", "--epochs", "12",
                                     "--pruning_times", "2", "--rate", "0.5",
                                     "--save_dir", "runs/out"),
                               checkpoints=("runs/out/*checkpoint.pth.tar",),
                               inputs=("own_vit/model.py",), label="train.py on digits")),
]
HARNESS_BARS = [
    Bar("script/digits/state0/accuracy", "State 0 best SA of train.py on digits", ">=", 60.0, "%"),
    Bar("script/digits/state1/accuracy", "State 1 (50% pruned) best SA of train.py on digits",
        ">=", 60.0, "%"),
]


def test_the_scripts_log_meets_the_bars(harness, case):
    record = harness.run(case)
    for state in record.states:
        harness.check_epoch(f"script/digits/state{state.index}/accuracy", state.best_epoch,
                            {"run_id": record.run_id, "source": record.source,
                             "checkpoints": sorted(record.notes.get("checkpoints", {}))})
