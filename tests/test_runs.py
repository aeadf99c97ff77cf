"""The engine's run context: --no-compile changes how a run executes, never which run it is."""
import pytest
import torch

from harness.runs import RunContext, get_or_run, run_key
from harness.spec import Recipe, RunSpec

SPEC = RunSpec(model="vit_tiny_digits", dataset="digits",
               recipe=Recipe(epochs=1, batch_size=512, augment="none", eval_batch_size=512))


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_compile_option_reuses_the_stored_run(tmp_path, one_thread):
    cpu = torch.device("cpu")
    eager = get_or_run(SPEC, RunContext(device=cpu, reports_dir=tmp_path, progress=False, compile=False))
    again = get_or_run(SPEC, RunContext(device=cpu, reports_dir=tmp_path, progress=False, compile=True))
    assert not eager.notes["reused"] and again.notes["reused"]
    assert again.run_id == eager.run_id == run_key(SPEC, cpu)
    assert eager.notes["compiled"] is False                  # CPU trains eagerly
    state = eager.state(0)
    assert state.images_per_s > 0 and state.epochs[0].seconds > 0


def test_compile_is_on_by_default():
    assert RunContext(device=torch.device("cpu"), reports_dir=".").compile is True
