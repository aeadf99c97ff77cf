"""The training step: eager on CPU, torch.compile on CUDA by default, timm's fused attention,
per-epoch training time recorded apart from evaluation; evaluation compiled where training is,
once for every batch shape and epoch, with exact counts."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from harness.data import Split, load_dataset
from harness.data.holdout import hold_out
from harness.models import MODELS, create_model
from harness.record import EpochRecord, StateRecord
from harness.runs import batches_for, validation_batches
from harness.spec import Recipe, RunSpec
from harness.train import (evaluate, evaluation_forward, is_compiled, train_phase, training_forward,
                           uses_fused_attention)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA: run `pytest -m gpu` on a GPU runner")
TINY = RunSpec(model="vit_tiny_digits", dataset="digits",
               recipe=Recipe(epochs=2, batch_size=256, lr=1e-3, augment="none", eval_batch_size=512))



class _SdpaCalls(torch.overrides.TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += func is F.scaled_dot_product_attention
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_harness_models_run_fused_sdpa_attention(name, one_thread):
    model = create_model(name, 10, 3).eval()
    assert uses_fused_attention(model)
    size = MODELS[name].image_size
    with torch.inference_mode(), _SdpaCalls() as mode:
        model(torch.zeros(1, 3, size, size))
    assert mode.calls == len(model.blocks)        # one fused call per transformer block


def test_explicit_attention_is_reported():
    model = create_model("vit_tiny_digits", 10, 1)
    model.blocks[1].attn.fused_attn = False
    assert not uses_fused_attention(model)
    assert not uses_fused_attention(torch.nn.Linear(2, 2))   # no attention at all


def test_cpu_trains_and_evaluates_eagerly_whatever_the_compile_option():
    model = create_model("vit_tiny_digits", 10, 1)
    for make in (training_forward, evaluation_forward):
        assert make(model, torch.device("cpu"), compile=True) is model
        assert make(model, torch.device("cpu"), compile=False, mode="max-autotune") is model
    assert not is_compiled(model)


def _phase(device: str, compile: bool, test_n: int = 256):
    full = load_dataset("digits")
    dataset = replace(full, train=Split(full.train.images[:512], full.train.labels[:512]),
                      test=Split(full.test.images[:test_n], full.test.labels[:test_n]))
    device = torch.device(device)
    torch.manual_seed(0)
    model = create_model(TINY.model, dataset.num_classes, dataset.channels).to(device)
    train, test = batches_for(TINY, dataset, device)
    step_fn = training_forward(model, device, compile)
    return train_phase(model, train, test, TINY.recipe, step_fn=step_fn), step_fn is not model


class _CountingBackend:
    """A torch.compile backend that runs the traced graph eagerly and counts the graphs made."""

    def __init__(self) -> None:
        self.graphs = []

    def __call__(self, graph, example_inputs):
        self.graphs.append([tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)])
        return graph.forward


def _digits_test(eval_batch_size: int):
    """The digits test split (360 images) in batches of ``eval_batch_size``."""
    spec = replace(TINY, recipe=replace(TINY.recipe, eval_batch_size=eval_batch_size))
    return batches_for(spec, load_dataset("digits"), torch.device("cpu"))[1]


def test_compiled_evaluation_pads_the_short_last_batch_and_compiles_once(one_thread):
    """360 test images in batches of 256: the last batch (104) is padded to 256, so one graph
    serves both batches and every later epoch, and the count is the eager model's."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_digits", 10, 1)
    test = _digits_test(256)
    backend = _CountingBackend()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend=backend, dynamic=False)
    assert is_compiled(compiled)
    eager = evaluate(model, test)
    assert evaluate(model, test, compiled) == eager and eager[1] == 360
    assert evaluate(model, test, compiled) == eager        # the next epoch: the same graph
    assert len(backend.graphs) == 1
    with torch.inference_mode():                            # unpadded, the short batch is a new graph
        compiled.eval()(next(iter(test))[0][:104])
    assert len(backend.graphs) == 2
    torch._dynamo.reset()


class _AlwaysClassZero(torch.nn.Module):
    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10, device=x.device)
        logits[:, 0] = 1.0
        return logits


def test_padding_rows_are_never_counted():
    """The padding's zero images are predicted like any image; their label -1 matches nothing."""
    test = _digits_test(256)
    model = _AlwaysClassZero()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend=_CountingBackend(), dynamic=False)
    class_zero = int((test.labels == 0).sum())
    assert evaluate(model, test, compiled) == evaluate(model, test) == (class_zero, 360)
    torch._dynamo.reset()


def test_epoch_train_seconds_exclude_evaluation(one_thread):
    phase, compiled = _phase("cpu", compile=True)
    assert not compiled
    assert len(phase.epoch_train_seconds) == TINY.recipe.epochs
    for epoch, train_s in zip(phase.epochs, phase.epoch_train_seconds):
        assert 0 < train_s < epoch.seconds           # the epoch's seconds also hold its evaluation
    assert math.isclose(sum(phase.epoch_train_seconds), phase.train_seconds)


def test_every_epoch_is_also_evaluated_on_the_held_out_images(one_thread):
    dataset, held = hold_out(load_dataset("digits"), 200)
    torch.manual_seed(0)
    model = create_model(TINY.model, dataset.num_classes, dataset.channels)
    train, test = batches_for(TINY, dataset, torch.device("cpu"))
    validation = validation_batches(TINY, dataset, held, torch.device("cpu"))
    phase = train_phase(model, train, test, TINY.recipe, validation=validation)
    assert len(train.labels) == 1237 and validation.labels.shape == (200,)
    for epoch in phase.epochs:
        assert epoch.val_n == 200 and epoch.val_accuracy == 100.0 * epoch.val_correct / 200
    model.eval()
    with torch.inference_mode():      # the last epoch's figure is the trained model's on those images
        x, y = next(iter(validation))
        assert int((model(x).argmax(1) == y).sum()) == phase.epochs[-1].val_correct
    without = train_phase(model, train, test, replace(TINY.recipe, epochs=1))
    assert without.epochs[0].val_accuracy is None and without.epochs[0].val_n is None


def _epoch(epoch: int, val: float, test: float) -> EpochRecord:
    return EpochRecord(epoch=epoch, train_loss=1.0, train_accuracy=50.0, test_accuracy=test,
                       val_accuracy=val)


def test_best_sa_is_test_accuracy_at_the_first_best_validation_epoch():
    state = StateRecord(index=1, epochs=[_epoch(0, 60.0, 70.0), _epoch(1, 80.0, 75.0),
                                         _epoch(2, 80.0, 90.0), _epoch(3, 70.0, 95.0)])
    assert state.best_validation_epoch.epoch == 1
    assert state.best_sa == 75.0 and state.best_accuracy == 95.0
    assert StateRecord(index=0, epochs=[_epoch(0, None, 70.0)]).best_sa is None
    assert StateRecord.from_dict(state.to_dict()).best_sa == 75.0


@pytest.mark.gpu
@needs_cuda
def test_cuda_evaluation_is_compiled_once_and_counts_like_eager():
    """On CUDA a phase evaluates through a compiled forward; a later epoch (another wrapper, as
    each state makes) reuses the graph, and the count matches the eager model's up to bf16 ties."""
    import torch._dynamo

    full = load_dataset("digits")      # 360 test images in batches of 512: one padded batch
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create_model(TINY.model, full.num_classes, full.channels).to(device)
    train, test = batches_for(TINY, full, device)
    phase = train_phase(model, train, test, replace(TINY.recipe, epochs=1),
                        step_fn=training_forward(model, device))
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = evaluate(model, test, evaluation_forward(model, device))
    eager = evaluate(model, test)
    assert compiled[1] == eager[1] == phase.epochs[0].test_n == 360
    assert compiled[0] == phase.epochs[0].test_correct
    assert abs(compiled[0] - eager[0]) <= 7          # 2% of 360


@pytest.mark.gpu
@needs_cuda
def test_cuda_compiles_by_default_and_learns_like_eager():
    compiled, was_compiled = _phase("cuda", compile=True)
    eager, eager_compiled = _phase("cuda", compile=False)
    assert was_compiled and not eager_compiled
    assert math.isclose(compiled.first_batch_loss, eager.first_batch_loss, rel_tol=0.02)
    assert compiled.epochs[-1].train_loss < compiled.first_batch_loss
    assert compiled.peak_memory_mb > 0


def _first_epochs(stop_after):
    dataset = load_dataset("digits")
    recipe = replace(TINY.recipe, epochs=3, warmup_epochs=1)
    torch.manual_seed(0)
    model = create_model(TINY.model, dataset.num_classes, dataset.channels)
    train, test = batches_for(TINY, dataset, torch.device("cpu"))
    return train_phase(model, train, test, recipe, stop_after=stop_after)


def test_stop_after_trains_the_first_epochs_of_the_whole_schedule(one_thread):
    """stop_after=1 is epoch 0 of the 3-epoch schedule, not a 1-epoch schedule: the same lr, so
    the same model after it (what a probe of an init's first epoch needs)."""
    probe, full = _first_epochs(1), _first_epochs(None)
    assert len(probe.epochs) == 1 and len(full.epochs) == 3
    assert probe.epochs[0].test_correct == full.epochs[0].test_correct
    assert probe.epochs[0].train_loss == pytest.approx(full.epochs[0].train_loss, rel=1e-6)
    with pytest.raises(ValueError, match=r"stop_after must be in \[1, recipe.epochs=3\], got 4"):
        _first_epochs(4)
