"""timm's train.py output folder: summary.csv rows and args.yaml arguments."""
import pytest

from fixtures.logs import HEALTHY_RUN, SEED_RUN, write_timm_folder
from harness.logs import LogError, parse_log, split_lines
from harness.logs import timm


def test_seed_run_folder(tmp_path):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    record = parse_log(folder)
    assert record.source == "log:timm"
    assert (record.dataset, record.num_classes, record.model) == ("cifar10", 10, "vit_small_patch16_224")
    # pretrained: false, but an initial checkpoint: starting from a file is the claim
    assert record.claims_pretrained and record.init == SEED_RUN.init
    s0 = record.state(0)
    assert len(s0.epochs) == 60 and s0.first_epoch_accuracy == 20.66 and s0.best_accuracy == 74.12
    # timm's console output saved beside summary.csv: the first batch at timm's 3 digits
    assert s0.first_batch_loss == 2.33 and record.notes["console_log"] == str(folder / "train.log")
    assert s0.intra_epoch == [(0, 352, 2.33, None), (200, 352, 2.2, None)]
    assert record.complete and record.spec["recipe"]["epochs"] == 60
    assert record.spec["recipe"]["optimizer"] == "sgd"


def test_without_a_console_log_there_is_no_first_batch(tmp_path):
    record = parse_log(write_timm_folder(SEED_RUN, tmp_path / "run", console=False))
    assert record.state(0).first_batch_loss is None and record.state(0).intra_epoch == []
    assert record.notes["console_log"] is None
    assert record.notes["first_batch_loss"].startswith("not in timm's summary.csv, and no console log")


def test_hub_pretrained_flag_is_the_claim(tmp_path):
    record = parse_log(write_timm_folder(HEALTHY_RUN, tmp_path / "run") / "summary.csv")
    assert record.claims_pretrained and record.init == "timm:vit_small_patch16_224"
    assert record.state(0).best_accuracy == 98.12


def test_partial_summary_and_missing_args(tmp_path):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    (folder / "args.yaml").unlink()
    text = (folder / "summary.csv").read_text()
    (folder / "summary.csv").write_text(text[: text.index("\n5,") + 6])  # row 5 cut mid-way
    record = parse_log(folder)
    assert [e.epoch for e in record.state(0).epochs] == [0, 1, 2, 3, 4]
    assert record.notes["unfinished_last_line"].startswith("5,")
    assert record.notes["args_yaml"] == "args.yaml missing: no run arguments"
    assert record.dataset == "" and not record.complete


def test_rows_that_do_not_fit_are_counted_and_a_resume_rewrites_its_epoch():
    text = ("epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n0,2.0,2.1,20.0,60.0,0.01\n"
            "1,1.9,x,21.0,61.0,0.01\n1,1.9,2.0,22.0,62.0\n"
            "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n1,1.8,1.9,23.0,63.0,0.01\n")
    facts = timm.parse(split_lines(text.encode()))
    assert [(e.epoch, e.test_accuracy) for e in facts["states"][0].epochs] == [(0, 20.0), (1, 23.0)]
    assert facts["tally"].not_understood == 2


def test_a_folder_without_summary_is_an_error(tmp_path):
    with pytest.raises(LogError, match="no summary.csv there"):
        parse_log(tmp_path, "timm")
