import os

import torch
from safetensors import safe_open

from fixtures.cifar import build_cifar10
from harness.runs import RunContext, RunStore, get_or_run, run_key
from harness.spec import Recipe, RunSpec

CPU = torch.device("cpu")
TINY = Recipe(epochs=2, batch_size=64, lr=1e-3, augment="none", eval_batch_size=512)


def ctx(tmp_path, **kw):
    return RunContext(device=CPU, reports_dir=tmp_path, progress=False, **kw)


def test_run_is_stored_reused_and_rerun(tmp_path):
    spec = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=TINY, seed=0)
    first = get_or_run(spec, ctx(tmp_path))
    state = first.state(0)
    assert not first.notes["reused"] and len(state.epochs) == 2 and state.test_n == 360
    assert 0 <= state.best_accuracy <= 100 and state.first_batch_loss > 0
    assert first.environment["torch"] == torch.__version__ and "git_commit" in first.environment
    ckpt = state.checkpoint
    with safe_open(ckpt, framework="pt") as fh:
        meta = fh.metadata()
    assert meta["run_id"] == first.run_id and '"seed": 0' in meta["spec"]
    mtime = os.stat(ckpt).st_mtime_ns

    again = get_or_run(spec, ctx(tmp_path))
    assert again.notes["reused"] and again.state(0).best_accuracy == state.best_accuracy
    assert os.stat(ckpt).st_mtime_ns == mtime  # not trained again

    fresh = get_or_run(spec, ctx(tmp_path, rerun=True))
    assert not fresh.notes["reused"] and os.stat(ckpt).st_mtime_ns != mtime
    assert not [p for p in (tmp_path / "runs" / first.run_id).iterdir() if p.name.endswith(".tmp")]


def test_same_seed_same_numbers(tmp_path):
    spec = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=Recipe(epochs=1, augment="crop", crop_padding=1), seed=5)
    a = get_or_run(spec, ctx(tmp_path / "a"))
    b = get_or_run(spec, ctx(tmp_path / "b"))
    assert a.state(0).epochs[0].test_correct == b.state(0).epochs[0].test_correct
    assert a.state(0).first_batch_loss == b.state(0).first_batch_loss


def test_interrupted_run_resumes_after_last_completed_state(tmp_path):
    """A state file on disk (the run died before record.json) is not trained again."""
    spec = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=Recipe(epochs=1), seed=0)
    done = get_or_run(spec, ctx(tmp_path))
    store = RunStore(tmp_path / "runs")
    (store.path(done.run_id) / "record.json").unlink()
    mtime = os.stat(done.state(0).checkpoint).st_mtime_ns
    resumed = get_or_run(spec, ctx(tmp_path))
    assert resumed.notes["resumed_after_state"] == 0
    assert os.stat(done.state(0).checkpoint).st_mtime_ns == mtime


def test_cifar_path_end_to_end_on_fixture_data(tmp_path):
    build_cifar10(tmp_path / "data", per_class_train=20, per_class_test=10)
    spec = RunSpec(model="vit_micro_patch4_32", dataset="cifar10", seed=0,
                   recipe=Recipe(epochs=3, batch_size=32, lr=2e-3, augment="crop_flip", eval_batch_size=256))
    record = get_or_run(spec, ctx(tmp_path, data_root=tmp_path / "data"))
    state = record.state(0)
    assert record.num_classes == 10 and state.test_n == 100
    assert state.best_accuracy > 30  # chance is 10%: the fixture's classes are learnable
    assert "NOT the official release" in record.notes["dataset_source"]
    assert run_key(spec, CPU) == record.run_id


def test_compile_option_reuses_the_stored_run(tmp_path):
    """--no-compile changes how a run executes, never which run it is."""
    spec = RunSpec(model="vit_tiny_digits", dataset="digits",
                   recipe=Recipe(epochs=1, batch_size=512, augment="none", eval_batch_size=512))
    eager = get_or_run(spec, ctx(tmp_path, compile=False))
    again = get_or_run(spec, ctx(tmp_path, compile=True))
    assert not eager.notes["reused"] and again.notes["reused"]
    assert again.run_id == eager.run_id == run_key(spec, CPU)
    assert eager.notes["compiled"] is False                  # CPU trains eagerly
    state = eager.state(0)
    assert state.images_per_s > 0 and state.epochs[0].seconds > 0


def test_compile_is_on_by_default(tmp_path):
    assert ctx(tmp_path).compile is True
