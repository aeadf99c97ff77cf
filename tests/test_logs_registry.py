"""Format detection, the --log-format override and the errors a user sees."""
import pytest

from fixtures.logs import SAMPLE_LOG, SEED_RUN, write_all
from harness.logs import FORMATS, LogError, detect, parse_log


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("logs"))


@pytest.mark.parametrize("fmt", ["research", "timm", "mllog"])
def test_detects_each_format_and_reads_the_same_run(logs, fmt):
    path = logs[(SEED_RUN.name, fmt)]
    assert detect(path) == fmt
    record = parse_log(path)
    s0 = record.state(0)
    assert record.source == f"log:{fmt}" and record.dataset == "cifar10" and record.claims_pretrained
    assert (s0.first_epoch_accuracy, s0.best_accuracy) == (20.66, 74.12)
    assert record.spec["recipe"]["epochs"] == 60


def test_detects_a_summary_csv_given_as_a_file(logs):
    assert detect(logs[(SEED_RUN.name, "timm")] / "summary.csv") == "timm"


def test_the_format_override_wins_and_then_reads_nothing_it_does_not_understand():
    record = parse_log(SAMPLE_LOG, "mllog")
    assert record.source == "log:mllog" and record.states == []
    # the Namespace(...) line is read as the run's arguments; nothing else is MLPerf
    assert record.notes["lines_not_understood"] == 113


def test_unknown_format_missing_path_and_undetectable_text(tmp_path):
    with pytest.raises(LogError, match="--log-format 'csv' is unknown; use one of research, imagenet-example, "
                                       "mllog, timm, pytorch-examples, epoch-acc"):
        parse_log(SAMPLE_LOG, "csv")
    with pytest.raises(LogError, match="no such file or folder"):
        parse_log(tmp_path / "missing.log")
    (tmp_path / "notes.txt").write_text("hello\nworld\n")
    with pytest.raises(LogError, match="cannot tell its format.*pass --log-format "
                                       "research\\|imagenet-example\\|mllog\\|timm\\|pytorch-examples\\|epoch-acc"):
        parse_log(tmp_path / "notes.txt")
    with pytest.raises(LogError, match="is a folder; the research format reads one log file"):
        parse_log(tmp_path, "research")


def test_registry_names():
    assert list(FORMATS) == ["research", "imagenet-example", "mllog", "timm", "pytorch-examples", "epoch-acc"]
