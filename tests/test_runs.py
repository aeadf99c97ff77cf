"""The state loop on real tiny runs: pruned states stored with their masks, RSST's penalty in the
record, a stored run reused, and a run killed with SIGKILL resuming after its last stored state."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.prune.penalty import coefficient
from harness.runs import RunContext, get_or_run, run_key
from harness.spec import PruneSpec, Recipe, RunSpec

TINY = Recipe(epochs=2, batch_size=64, lr=3e-3, warmup_epochs=0, augment="none", eval_batch_size=512)
CPU = torch.device("cpu")


def _spec(method: str, states: int = 2, rewind: str = "init", **prune) -> RunSpec:
    return RunSpec(model="vit_tiny_digits", dataset="digits", recipe=TINY, seed=3,
                   prune=PruneSpec(method=method, states=states, final_sparsity=0.5, rewind=rewind,
                                   **prune))


def _context(root: Path) -> RunContext:
    return RunContext(device=CPU, reports_dir=root, progress=False)


@pytest.fixture(scope="module")
def rsst_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsst")
    spec = _spec("rsst", reg_schedule="x^2", reg_limit=0.2, reg_granularity=0.01)
    return spec, root, get_or_run(spec, _context(root))


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
    steps = 1437 // TINY.batch_size
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
                       _context(root))
    assert dense.notes["reused"] and record.states[0].checkpoint == dense.states[0].checkpoint
    t0 = time.perf_counter()
    again = get_or_run(spec, _context(root))
    assert again.notes["reused"] and time.perf_counter() - t0 < 5
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


def test_a_killed_run_resumes_after_its_last_stored_state(tmp_path):
    import json

    spec = _spec("refill", states=4, rewind="epoch:1")
    folder = tmp_path / "runs" / run_key(spec, CPU)
    code = _CHILD.format(repo=str(Path(__file__).resolve().parents[1]), root=str(tmp_path),
                         spec=json.dumps(spec.to_dict()))
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 300
    while not (folder / "state1.json").exists():
        assert child.poll() is None, f"the run exited ({child.returncode}) before storing state 1"
        assert time.monotonic() < deadline, "state 1 was not stored within 300 s"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL
    assert not (folder / "record.json").exists()
    done = max(int(p.name[5:-5]) for p in folder.glob("state*.json"))
    assert 1 <= done < 4
    before = _stored(folder)

    record = get_or_run(spec, _context(tmp_path))
    assert record.notes["resumed_after_state"] == done
    assert [s.index for s in record.states] == [0, 1, 2, 3, 4]
    after = _stored(folder)
    assert all(after[name] == before[name] for name in before if not name.startswith(f"state{done + 1}."))
    assert abs(record.states[-1].sparsity - 50.0) < 0.1
    assert (folder / "rewind.safetensors").exists()
