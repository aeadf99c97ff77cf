"""bench/throughput.py on CPU, small sizes: both loops measured in one run, figures consistent."""
import json
import math

import pytest
import torch

from bench import throughput
from harness.threads import cpu_threads


@pytest.fixture
def restore_threads():
    """The benchmark sets the thread count; put it back afterwards."""
    with cpu_threads(None):
        yield


@pytest.mark.slow
def test_quick_run_on_cpu_measures_both_loops(tmp_path, restore_threads, capsys):
    out = tmp_path / "throughput.json"
    assert throughput.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    case = doc["cases"]["smoke"]
    for key in ("device", "engine_img_per_s", "reference_img_per_s", "ratio", "mfu", "epoch_seconds"):
        assert doc[key] == case.get(key, doc[key])
    assert case["engine_img_per_s"] > 0 and case["reference_img_per_s"] > 0
    assert math.isclose(case["ratio"], case["engine_img_per_s"] / case["reference_img_per_s"])
    assert math.isclose(case["mfu"], case["engine_img_per_s"] * case["train_flops_per_image"]
                        / (doc["matmul_ceiling_tflops"] * 1e12))
    assert math.isclose(case["epoch_seconds"], case["epoch_images"] / case["engine_img_per_s"])
    assert case["schedule_minutes"] >= 16 * 60 * (case["epoch_seconds"] + case["eval_seconds"]) / 60
    engine, reference = case["engine"], case["reference"]
    assert engine["fused_attention"] and not engine["compiled"]
    assert engine["epochs_timed"] == len(engine["epoch_train_seconds_each"]) >= 1
    assert math.isfinite(engine["final_train_loss"]) and math.isfinite(reference["final_running_loss"])
    assert reference["batch_size"] == 128 and case["reference_data"] == "loader"
    printed = capsys.readouterr().out
    assert "throughput case=smoke" in printed and "16x60 min" in printed and "ratio >= 1" in printed


def test_flops_count_the_attention_products():
    case = throughput.CASES["smoke"]
    dataset = throughput.bench_dataset(case, None)
    flops = throughput.training_flops_per_image(case, dataset, torch.device("cpu"))
    model = throughput.reference_model(case, dataset, torch.device("cpu"))
    tokens, dim, depth = 16, 64, len(model.blocks)
    linear = sum(p.numel() for n, p in model.blocks.named_parameters() if n.endswith("weight") and p.ndim == 2)
    attention = depth * 2 * tokens * tokens * dim               # q @ k^T and attn @ v, MACs
    assert flops >= 3 * 2 * (tokens * linear + attention)       # forward + backward = 3 x forward
    assert flops < 1.1 * 3 * 2 * (tokens * linear + attention + tokens * dim * 10)


def test_unknown_case_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        throughput.parse_args(["--cases", "nope"])
    assert exc.value.code == 2
    assert "--cases: unknown nope" in capsys.readouterr().err


def test_schedule_counts_every_state_and_epoch():
    assert throughput._schedule_minutes(2.5, 60.0) == pytest.approx((16 * 60 * 2.5 + 60) / 60)
    assert throughput._schedule_minutes(2.5, 60.0, 16) == pytest.approx((16 * 60 * 2.5 + 16 * 60) / 60)


@pytest.mark.slow
def test_quick_run_without_out_writes_no_file(tmp_path, monkeypatch, restore_threads, capsys):
    """Issue 10 item 8: `bench/throughput.py --quick` wrote bench/results/throughput.json into
    the repository (relative to the working folder); without --out it writes nothing."""
    monkeypatch.chdir(tmp_path)
    assert throughput.main(["--quick", "--threads", "1", "--device", "cpu"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "no --out given: no JSON written" in capsys.readouterr().out
