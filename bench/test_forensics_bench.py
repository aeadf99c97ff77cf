"""Load plus verdict of a timm vit_small_patch16_224 random init (created here), and
weightwatcher's analyze() on the same model side by side when it is installed.

Run: ``pytest bench/ --benchmark-only`` (not part of the default ``pytest``: timings belong on
an otherwise idle machine). Bars from issue 3: at most 0.5 s per ViT-S file, and at most a third
of weightwatcher's time in the same run.
"""
import statistics
import time

import pytest
import timm
import torch

from harness.forensics.inspection import inspect_checkpoint
from harness.forensics.judgement import RANDOM_INIT

MAX_SECONDS = 0.5
MAX_SHARE_OF_WEIGHTWATCHER = 1 / 3


@pytest.fixture(scope="module")
def vit_small(tmp_path_factory):
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False)
    path = tmp_path_factory.mktemp("bench") / "vit_small_cifar10_pretrained_init.pth.tar"
    torch.save({"state_dict": model.state_dict()}, path)
    return model, path


def test_load_plus_verdict_vit_small(benchmark, vit_small):
    _, path = vit_small
    inspect_checkpoint(path)                      # page cache warm, as for any second file
    result = benchmark.pedantic(inspect_checkpoint, args=(path,), rounds=7, iterations=1)
    assert result.verdict == RANDOM_INIT
    benchmark.extra_info["seconds_field"] = round(result.seconds, 4)
    median = benchmark.stats.stats.median
    assert result.seconds <= MAX_SECONDS and median <= MAX_SECONDS, (result.seconds, median)
    assert abs(result.seconds - median) <= 0.5 * median + 0.02   # the field agrees with the bench


def test_side_by_side_with_weightwatcher(vit_small):
    ww = pytest.importorskip("weightwatcher", reason="optional bench extra: pip install "
                             "'harness[bench]' to measure weightwatcher's analyze() beside it")
    model, path = vit_small
    ours = statistics.median(_timed(lambda: inspect_checkpoint(path)) for _ in range(5))
    theirs = _timed(lambda: ww.WeightWatcher(model=model).analyze())
    print(f"\nharness inspect (load + verdict) {ours:.3f} s; weightwatcher analyze() {theirs:.3f} s;"
          f" ratio {ours / theirs:.3f}")
    assert ours <= MAX_SHARE_OF_WEIGHTWATCHER * theirs, (ours, theirs)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
