"""The lab's suite: the harness trains the lab's CNN on the lab's data (its factories, by import
path) and runs the lab's own train.py, reading its fractional log with the patterns declared in
pyproject.toml; both are judged against the lab's bars."""
import sys

from harness.suite import Bar, Case, CommandSpec, Recipe, RunSpec

SUITE = "lab"
HARNESS_CASES = [
    Case("labnet", RunSpec(model="labnet:labnet", dataset="labdata:digits16",
                           recipe=Recipe(epochs=4, batch_size=64, lr=0.05, optimizer="sgd",
                                         weight_decay=5e-4, augment="none"),
                           label="the lab's CNN, trained by the harness")),
    Case("train_py", CommandSpec(argv=(sys.executable, "train.py", "--epochs", "4", "--out", "runs"),
                                 checkpoints=("runs/*.pth.tar",), inputs=("labnet.py", "labdata.py"),
                                 label="the lab's train.py")),
]
HARNESS_BARS = [
    Bar("lab/labnet/state0/accuracy", "State 0 accuracy of the lab's CNN trained by the harness",
        ">=", 80.0, "%"),
    Bar("lab/train_py/state0/accuracy", "Best validation top-1 printed by the lab's train.py",
        ">=", 80.0, "%"),
]


def test_each_run_reaches_its_bar(harness, case):
    record = harness.run(case)
    harness.check_epoch(f"{case.id}/state0/accuracy", record.state(0).best_epoch,
                        {"run_id": record.run_id, "source": record.source})
