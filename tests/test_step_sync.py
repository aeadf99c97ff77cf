"""Issue 25: on CUDA the training step never waits for the host. The optimiser is fused AdamW
(one kernel per parameter group, its step counts on the device), the lr is a Python float set by
the schedule, gradient clipping keeps its norm on the device, and loss and accuracy are summed on
the device and read once per epoch (harness/train.py). torch's sync debug mode turns any
synchronising call inside the steps of an epoch (after its first) into an error that names it."""
import pytest
import torch

from harness.data import load_dataset
from harness.models import create_model
from harness.runs import batches_for
from harness.spec import Recipe, RunSpec
from harness.train import PhaseHooks, make_optimizer, train_phase, training_forward

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
RECIPE = Recipe(epochs=2, batch_size=64, lr=2e-3, optimizer="adamw", weight_decay=0.05, warmup_epochs=1,
                label_smoothing=0.1, grad_clip=1.0, augment="crop", crop_padding=2, eval_batch_size=512)
SPEC = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=RECIPE)


def test_the_optimiser_is_fused_on_cuda_only():
    model = create_model(SPEC.model, 10, 1)
    assert not make_optimizer(model, RECIPE, torch.device("cpu")).defaults.get("fused")


@pytest.mark.gpu
@needs_cuda
def test_a_cuda_training_step_never_synchronises_with_the_host():
    device = torch.device("cuda")
    dataset = load_dataset(SPEC.dataset)
    torch.manual_seed(0)
    model = create_model(SPEC.model, dataset.num_classes, dataset.channels).to(device)
    assert make_optimizer(model, RECIPE, device).defaults["fused"] is True
    train, test = batches_for(SPEC, dataset, device)
    steps = len(train)
    assert steps >= 3
    checked = []

    def after_step():
        # epoch 1 (epoch 0 compiles): from the end of its first step to the end of its last,
        # every batch, forward, backward, clip, optimiser and schedule step runs in "error" mode
        k = len(checked)
        checked.append(torch.cuda.get_sync_debug_mode())
        if k == steps:
            torch.cuda.set_sync_debug_mode("error")
        elif k == 2 * steps - 1:
            torch.cuda.set_sync_debug_mode("default")

    try:
        phase = train_phase(model, train, test, RECIPE, hooks=PhaseHooks(after_step=after_step),
                            step_fn=training_forward(model, device))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(checked) == 2 * steps and checked[steps + 1:] == [2] * (steps - 1)
    assert phase.epochs[-1].train_loss < phase.first_batch_loss
