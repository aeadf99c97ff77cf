"""The pruning section of the report: a PNG per pruning run and the overlay, referenced from
report.md with the per-state table; nothing of it for a report without pruning runs."""
import json
import time

from harness.record import EpochRecord, RunRecord, StateRecord
from harness.report import build_report, write_reports


def _state(index: int, accuracy: float, sparsity: float, penalty: bool) -> StateRecord:
    epoch = EpochRecord(epoch=0, train_loss=0.5, train_accuracy=90.0, test_accuracy=accuracy + 0.5,
                        test_correct=int(accuracy * 3.6), test_n=360)
    return StateRecord(
        index=index, epochs=[epoch], sparsity=sparsity, target_sparsity=sparsity + 0.02,
        structure={"blocks.0.attn": {"unit": "head", "total": 4, "left": 4 - index, "removed": index, "partial": 0},
                   "blocks.0.mlp": {"unit": "neuron", "total": 256, "left": 256 - 50 * index,
                                    "removed": 50 * index, "partial": 0}},
        penalty=[{"epoch": 0, "coefficient_start": 0.0, "coefficient_end": 0.095, "mean_penalty": 0.01}]
        if penalty and index else [],
        extra={"method": "rsst" if penalty else "refill"}, stored_correct=round(accuracy * 10), stored_n=1000)


def _report(records: dict) -> dict:
    return build_report(profile="smoke", verdicts=[], tests=[], records=records, environment={},
                        started=time.time())


def _runs() -> dict:
    out = {}
    for method in ("refill", "rsst"):
        states = [_state(k, 97.0 - k, [0.0, 33.0, 55.1][k], method == "rsst") for k in range(3)]
        out[f"pruning/{method}"] = RunRecord(run_id=method, source="engine", dataset="digits",
                                             num_classes=10, model="vit_tiny_digits", states=states)
    return out


def test_pruning_runs_get_plots_and_a_per_state_table(tmp_path):
    paths = write_reports(_report(_runs()), tmp_path)
    latest = tmp_path / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert set(report["plots"]) == {"pruning/refill", "pruning/rsst", "pruning"}
    for rel in report["plots"].values():
        assert (latest / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (latest / rel).stat().st_size > 10_000
    md = paths["markdown"].read_text()
    assert "![pruning/rsst](plots/pruning-rsst.png)" in md and "![pruning](plots/pruning.png)" in md
    assert "| pruning/rsst | 2 | 55.12% | 55.10% | 95.00% | 95.50% | 2/4 | 156/256 | 0.095 |" in md
    assert "| pruning/refill | 1 | 33.02% | 33.00% | 96.00% | 96.50% | 3/4 | 206/256 | - |" in md
    page = paths["html"].read_text()
    for name in ("pruning", "pruning/refill", "pruning/rsst"):
        assert f'<img alt="{name}" src="data:image/png;base64,' in page


def test_a_report_without_pruning_runs_has_no_pruning_section(tmp_path):
    dense = RunRecord(run_id="d", source="engine", dataset="digits", num_classes=10, model="m",
                      states=[StateRecord(index=0)])
    paths = write_reports(_report({"baseline/digits": dense}), tmp_path)
    assert "## Pruning" not in paths["markdown"].read_text()
    assert not (tmp_path / "latest" / "plots").exists()
    assert "plots" not in json.loads((tmp_path / "latest" / "report.json").read_text())
