"""The runs store and the state loop on real tiny runs: stored, reused, rerun, resumed; pruned
states stored with their masks, RSST's penalty in the record, and a run killed with SIGKILL
resuming after its last stored state."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fixtures.cifar import build_cifar10
from harness.prune.penalty import coefficient
from harness.runs import RunContext, RunStore, get_or_run, run_key
from harness.spec import PruneSpec, Recipe, RunSpec

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
    spec = RunSpec(model="vit_tiny_digits", dataset="digits", seed=5,
                   recipe=Recipe(epochs=1, augment="crop", crop_padding=1))
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


# --- pruning runs: the state loop, RSST's record, shared State 0, SIGKILL and resume ----------
PRUNE_TINY = Recipe(epochs=2, batch_size=64, lr=3e-3, warmup_epochs=0, augment="none", eval_batch_size=512)


def _spec(method: str, states: int = 2, rewind: str = "init", **prune) -> RunSpec:
    return RunSpec(model="vit_tiny_digits", dataset="digits", recipe=PRUNE_TINY, seed=3,
                   prune=PruneSpec(method=method, states=states, final_sparsity=0.5, rewind=rewind,
                                   **prune))


@pytest.fixture(scope="module")
def rsst_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsst")
    spec = _spec("rsst", reg_schedule="x^2", reg_limit=0.2, reg_granularity=0.01)
    return spec, root, get_or_run(spec, ctx(root))


def test_pruned_states_meet_the_schedule_with_whole_channels(rsst_run):
    spec, _, record = rsst_run
    assert [s.index for s in record.states] == [0, 1, 2]
    for state in record.states[1:]:
        assert state.target_sparsity == pytest.approx(100 * spec.prune.sparsity_at(state.index))
        assert abs(state.sparsity - state.target_sparsity) < 0.1
        assert all(f["partial"] == 0 for f in state.structure.values())
        weights, masks = load_file(state.checkpoint), load_file(state.masks)
        assert all(torch.count_nonzero(weights[n][~m]) == 0 for n, m in masks.items())
    first, second = (load_file(s.masks) for s in record.states[1:])
    assert all(bool((~second[n])[~first[n]].all()) for n in first)


def test_rsst_penalty_grows_as_its_schedule_says_and_is_recorded(rsst_run):
    spec, _, record = rsst_run
    steps = 1437 // PRUNE_TINY.batch_size
    for state in record.states[1:]:
        assert [p["epoch"] for p in state.penalty] == [0, 1]
        for p in state.penalty:
            last_step = (p["epoch"] + 1) * steps - 1
            assert p["coefficient_end"] == pytest.approx(
                coefficient("x^2", last_step / (2 * steps), limit=0.2, granularity=0.01))
            assert p["mean_penalty"] > 0
        assert state.penalty[0]["coefficient_end"] < state.penalty[1]["coefficient_end"]
        assert state.penalty[0]["coefficient_start"] == 0
        assert state.extra["penalised_squared_norm_before_cut"] > 0   # cut at the end, not before


def test_state_zero_is_shared_with_the_dense_run_and_a_stored_run_is_reused(rsst_run):
    spec, root, record = rsst_run
    dense = get_or_run(RunSpec(model=spec.model, dataset=spec.dataset, recipe=spec.recipe, seed=3),
                       ctx(root))
    assert dense.notes["reused"] and record.states[0].checkpoint == dense.states[0].checkpoint
    again = get_or_run(spec, ctx(root))
    assert again.notes["reused"]          # read from the store, not trained again (no wall-clock bound)
    assert [s.sparsity for s in again.states] == [s.sparsity for s in record.states]


_CHILD = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {repo!r})
from harness.runs import RunContext, get_or_run
from harness.spec import spec_from_dict
import json
spec = spec_from_dict(json.loads({spec!r}))
get_or_run(spec, RunContext(device=torch.device("cpu"), reports_dir=Path({root!r}), progress=False))
"""


def _stored(folder: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob("state*")}


@pytest.mark.slow
def test_a_killed_run_resumes_after_its_last_stored_state(tmp_path):
    spec = _spec("refill", states=4, rewind="epoch:1")
    folder = tmp_path / "runs" / run_key(spec, CPU)
    code = _CHILD.format(repo=str(Path(__file__).resolve().parents[1]), root=str(tmp_path),
                         spec=json.dumps(spec.to_dict()))
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 1800        # a hang guard only: a loaded machine is slow, not wrong
    while not (folder / "state1.json").exists():
        assert child.poll() is None, f"the run exited ({child.returncode}) before storing state 1"
        assert time.monotonic() < deadline, "state 1 was not stored within 1800 s"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL
    assert not (folder / "record.json").exists()
    done = max(int(p.name[5:-5]) for p in folder.glob("state*.json"))
    assert 1 <= done < 4
    before = _stored(folder)

    record = get_or_run(spec, ctx(tmp_path))
    assert record.notes["resumed_after_state"] == done
    assert [s.index for s in record.states] == [0, 1, 2, 3, 4]
    after = _stored(folder)
    assert all(after[name] == before[name] for name in before if not name.startswith(f"state{done + 1}."))
    assert abs(record.states[-1].sparsity - 50.0) < 0.1
    assert (folder / "rewind.safetensors").exists()
