"""The research parser on the group's ViT pruning log lines (vit_pruning_utils.py's sparsity
report, the head/MLP selection's ``Layer:``/``Keeping k/H heads:`` lines, the validation pass
before ``* best SA=``), as main_imp_fillback.py prints them."""
from harness.logs import parse_log

LOG = """Namespace(dataset='digits', arch='vit_mini', struct='rsst', rate=0.7, pruning_times=2, epochs=1)
******************************************
pruning state 0
******************************************
================================================================================
[ViT Sparsity Report]
--------------------------------------------------------------------------------
blocks.0.attn.qkv                                  | Sparsity:   0.00% | Zeros:        0/   27648
--------------------------------------------------------------------------------
Total zeros: 0 / 442,368
Overall sparsity: 0.00%
Remaining weights: 100.00%
================================================================================
0.01
Epoch: [0][0/79]\tLoss 2.3051 (2.3051)\tAccuracy 12.500 (12.500)\tTime 0.05
train_accuracy 10.024
Test: [0/1]\tLoss 2.2000 (2.2000)\tAccuracy 14.444 (14.444)
valid_accuracy 14.444
valid_accuracy 15.278
✓ State 0 checkpoint saved (final epoch: 1/1)
valid_accuracy 14.444
* best SA=15.277777671813965
[ViT Pruning] Start unstructured L1 pruning for ViT, rate=0.7
  - Adding to prune: blocks.0.attn.qkv (QKV)
Remaining weights: 30.00%
Keeping 7/24 heads globally (29.2%)

Layer: blocks.0.attn.qkv
  Keeping 2/6 heads: [0, 3]
Layer: blocks.0.mlp.fc1
  Keeping 129/384 neurons
Remaining weights: 100.00%
⏱️  State 0 completed! Time elapsed: 0.14 minutes (8.3 seconds)
******************************************
pruning state 1
******************************************
Remaining weights: 100.00%
0.01
Epoch: [0][0/79]\tLoss 2.3000 (2.3000)\tAccuracy 12.500 (12.500)\tTime 0.05
train_accuracy 11.000
valid_accuracy 20.000
valid_accuracy 21.000
valid_accuracy 20.000
* best SA=21.0
Remaining weights: 9.00%
"""


def test_pruning_lines_of_the_groups_vit_log(tmp_path):
    path = tmp_path / "rsst.log"
    path.write_text(LOG, encoding="utf-8")
    record = parse_log(path)
    s0, s1 = record.states
    assert s0.extra["remaining_weights"] == [
        {"line": 12, "remaining": 100.0, "at_start": True, "after_summary": False},
        {"line": 25, "remaining": 30.0, "at_start": False, "after_summary": True},
        {"line": 32, "remaining": 100.0, "at_start": False, "after_summary": True}]
    assert [r["remaining"] for r in s1.extra["remaining_weights"]] == [100.0, 9.0]
    assert (s0.sparsity, s1.sparsity) == (0.0, 0.0)     # what each state trained at
    assert s0.extra["best_sa_logged"] == 15.277777671813965
    assert record.notes["best_sa_lines"] == [(0, 22), (1, 44)]
    assert s0.extra["final_validation"] == 14.444         # the pass before the summary
    assert record.notes["epochs_without_test_accuracy"] == []
    assert record.notes["heads"] == {"blocks.0.attn": 6}
    assert [len(s.epochs) for s in record.states] == [1, 1]
    assert record.notes["lines_not_understood"] == 0, record.notes["not_understood_examples"]
