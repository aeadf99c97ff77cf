"""The names a declared log format uses (``harness_log_patterns``, ``harness log --pattern``):
one list, read by the parser, the option help, ``harness log --help`` and the docs' table
(docs/logs.md, written from it by harness.doctables). Imports nothing: the pytest plugin reads it at startup."""
from __future__ import annotations

# name -> what it reads. The first eight are regular expressions; the last two are settings.
PATTERNS = {
    "epoch": "the epoch number (group 1, or (?P<epoch>...))",
    "test_accuracy": "a test accuracy (group 1, or (?P<accuracy>...)), scaled as accuracy_scale "
                     "says",
    "test_correct_total": "the test counts: groups correct and total (or 1 and 2), preferred "
                          "over a printed percentage",
    "loss": "the training loss (the last one before an evaluation is the epoch's)",
    "step": "a batch inside an epoch: group 1 its index; the loss on a state's first step "
            "line (0 or 1) is the first-batch loss",
    "state": "a pruning state or phase header: group 1 its index (else the next index)",
    "arguments": "where a run-argument list starts: the text after the match is read as "
                 "key=value, ... (argparse's Namespace) or as a JSON object {...}",
    "argument": "one run argument a line, groups key and value (or 1 and 2), e.g. "
                "'dataset: cifar100', read before the first evaluation",
}
SETTINGS = {
    "epoch_base": "0 or 1: the number the log gives the first epoch (default: the first "
                  "printed epoch, when 0 or 1)",
    "accuracy_scale": "percent, fraction or auto (the default): fraction multiplies each "
                      "accuracy by 100, auto does so when every accuracy the log prints is at "
                      "most 1, and the record says which was applied and why",
}
NAMES = {**PATTERNS, **SETTINGS}
SCALES = ("auto", "percent", "fraction")


def listed() -> str:
    """The names, comma-separated, for one line of help."""
    return ", ".join(NAMES)
