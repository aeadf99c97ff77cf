"""bench/throughput.py on CPU, small sizes: both loops measured in one run, every variant asked
for in one table, figures consistent, bars judged as harness Expectations, the kernel table."""
import json
import math
import time

import pytest
import torch

from bench import loops, throughput
from bench.cases import CASES, VARIANTS, bar
from bench.flops import training_flops_per_image
from bench.schedule import EPOCHS, STATES, schedule_minutes
from bench.workload import bench_dataset, reference_model
from harness.expect import ExpectationError
from harness.threads import cpu_threads
from suites.profiles import FULL_RECIPE


@pytest.fixture
def restore_threads():
    """The benchmark sets the thread count; put it back afterwards."""
    with cpu_threads(None):
        yield


@pytest.mark.slow
def test_quick_run_on_cpu_measures_both_loops_and_every_variant(tmp_path, restore_threads, capsys):
    out, kernels = tmp_path / "throughput.json", tmp_path / "kernels"
    assert throughput.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(out),
                            "--variants", "default,batch-x2", "--profile-kernels", str(kernels)]) == 0
    doc = json.loads(out.read_text())
    case = doc["cases"]["smoke"]
    for key in ("engine_img_per_s", "reference_img_per_s", "ratio", "mfu", "epoch_seconds"):
        assert doc[key] == case[key] == (case["variants"]["default"].get(key, case[key]))
    assert set(case["variants"]) == {"default", "batch-x2"} and set(doc["variants"]) == {"default", "batch-x2"}
    assert case["variants_left_out"] == {}          # no --deadline-seconds: every variant runs
    batches = {name: v["engine"]["batch_size"] for name, v in case["variants"].items()}
    assert batches["batch-x2"] == 2 * batches["default"]
    for v in case["variants"].values():
        assert v["engine_img_per_s"] > 0
        assert math.isclose(v["ratio"], v["engine_img_per_s"] / case["reference_img_per_s"])
        assert math.isclose(v["mfu"], v["engine_img_per_s"] * case["train_flops_per_image"]
                            / (doc["matmul_ceiling_tflops"] * 1e12))
        assert math.isclose(v["epoch_seconds"], case["epoch_images"] / v["engine_img_per_s"])
        assert v["schedule_minutes"] >= STATES * EPOCHS * (v["epoch_seconds"] + v["eval_seconds"]) / 60
        engine = v["engine"]
        assert engine["fused_attention"] and not engine["compiled"] and not engine["eval_compiled"]
        assert engine["epochs_timed"] == len(engine["epoch_train_seconds_each"]) >= 1
        assert math.isfinite(engine["final_train_loss"])
    reference = case["reference"]
    assert math.isfinite(reference["final_running_loss"])
    assert reference["batch_size"] == 128 and case["reference_data"] == "loader"
    [verdict] = case["bars"]              # the smoke bar applies on every device
    assert verdict["id"] == "throughput/smoke/ratio" and verdict["observed"] == case["ratio"]
    assert verdict["passed"] == (case["ratio"] >= 1.0)
    printed = capsys.readouterr().out
    assert "throughput case=smoke variant=default" in printed and "variant=batch-x2" in printed
    assert "engine batch-x2" in printed and "reference (loader)" in printed and f"{STATES}x{EPOCHS} min" in printed
    assert "throughput/smoke/ratio: smoke engine over the reference loop: observed" in printed
    for name in ("default", "batch-x2"):
        table = (kernels / f"kernels_smoke_{name}.txt").read_text()
        assert "self_cpu_time_total" in table and "aten::" in table and "Self CPU" in table


def test_flops_count_the_attention_products():
    case = CASES["smoke"]
    dataset = bench_dataset(case, None)
    flops = training_flops_per_image(case, dataset, torch.device("cpu"))
    model = reference_model(case, dataset, torch.device("cpu"))
    tokens, dim, depth = 16, 64, len(model.blocks)
    linear = sum(p.numel() for n, p in model.blocks.named_parameters() if n.endswith("weight") and p.ndim == 2)
    attention = depth * 2 * tokens * tokens * dim               # q @ k^T and attn @ v, MACs
    assert flops >= 3 * 2 * (tokens * linear + attention)       # forward + backward = 3 x forward
    assert flops < 1.1 * 3 * 2 * (tokens * linear + attention + tokens * dim * 10)


def test_unknown_case_or_variant_is_a_usage_error(capsys):
    for option, value in (("--cases", "nope"), ("--variants", "default,fastest")):
        with pytest.raises(SystemExit) as exc:
            throughput.parse_args([option, value])
        assert exc.value.code == 2
        assert f"{option}: unknown {value.split(',')[-1]}" in capsys.readouterr().err


def test_schedule_counts_every_state_and_epoch_of_the_full_profile():
    assert (STATES, EPOCHS) == (16, FULL_RECIPE.epochs) == (16, 60)
    assert schedule_minutes(2.5, 60.0) == pytest.approx((16 * 60 * 2.5 + 60) / 60)
    assert schedule_minutes(2.5, 60.0, 16) == pytest.approx((16 * 60 * 2.5 + 16 * 60) / 60)


def test_bars_are_harness_bars_on_known_metrics():
    s4 = {b.id: b for b in CASES["vit_small_patch4_32"].bars}
    mfu = s4["throughput/vit_small_patch4_32/mfu"]
    assert (mfu.op, mfu.threshold, mfu.unit) == (">=", 30.0, "%")
    assert mfu.evaluate(24.07).gap == pytest.approx(-5.93)
    assert [b.threshold for b in CASES["vit_small_patch16_224"].bars] == [9_000]
    with pytest.raises(ValueError, match="bar metric must be one of"):
        bar("x", "speed", ">=", 1.0, "", "x")
    with pytest.raises(ExpectationError):
        bar("x", "mfu", ">", 1.0, "%", "x")


def test_variants_change_how_the_loop_runs_never_the_recipe():
    recipe = CASES["vit_small_patch4_32"].recipe
    assert VARIANTS["default"].recipe(recipe) == recipe
    assert VARIANTS["batch-x2"].recipe(recipe).batch_size == 2 * recipe.batch_size
    assert VARIANTS["max-autotune"].compile_mode == "max-autotune-no-cudagraphs"
    assert CASES["vit_small_patch4_32"].recipe.batch_size == 512     # unchanged by the variant


def test_a_deadline_leaves_out_the_variants_whose_measured_cost_does_not_fit():
    """Issue 25: the GPU check's variants are kept by their cost estimated from the default
    variant measured on the card (compile and epoch), never by a fixed guess."""
    base = loops._Base(compile_s=10.0, epoch_s=2.0, rounds=3)
    roomy = loops._Plan(time.perf_counter(), 1000.0, {})
    assert all(roomy.fits(v, base, reserved=0.0) for v in VARIANTS.values())
    tight = loops._Plan(time.perf_counter(), 50.0, {})
    kept = [name for name, v in VARIANTS.items() if tight.fits(v, base, reserved=0.0)]
    # default-mode compile ~10 s + 4 epochs of 2 s fits; max-autotune's ~60 s compile does not;
    # twice the batch costs twice the epoch (26 s) and fits
    assert "max-autotune" not in kept and {"channels-last", "batch-x2"} <= set(kept)
    assert tight.left_out["max-autotune"].startswith("~68 s estimated (compile ~60 s, 4 epochs of ~2.0 s")
    assert loops._Plan(time.perf_counter(), None, {}).fits(VARIANTS["max-autotune"], base, 1e9)


@pytest.mark.slow
def test_a_run_past_its_deadline_measures_the_first_variant_and_names_the_rest(tmp_path, restore_threads,
                                                                               capsys):
    out = tmp_path / "t.json"
    assert throughput.main(["--quick", "--threads", "1", "--device", "cpu", "--variants", "default,batch-x2",
                            "--deadline-seconds", "0", "--out", str(out)]) == 0
    case = json.loads(out.read_text())["cases"]["smoke"]
    assert set(case["variants"]) == {"default"} and case["variants"]["default"]["engine_img_per_s"] > 0
    assert set(case["variants_left_out"]) == {"batch-x2"}
    assert "variant batch-x2 of smoke left out: ~" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        throughput.parse_args(["--deadline-seconds", "-1"])
    assert "--deadline-seconds must be >= 0, got -1.0" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_without_out_writes_no_file(tmp_path, monkeypatch, restore_threads, capsys):
    """Issue 10 item 8: `bench/throughput.py --quick` wrote bench/results/throughput.json into
    the repository (relative to the working folder); without --out it writes nothing."""
    monkeypatch.chdir(tmp_path)
    assert throughput.main(["--quick", "--threads", "1", "--device", "cpu"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "no --out given: no JSON written" in capsys.readouterr().out
